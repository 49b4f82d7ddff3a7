"""The routes and details Vast.ai's client and PyWorker rely on, against the router app in
process: RSA tickets and /pubkey/, Vast-style status reports, /delete_requests/, the endpoint
listing, the workers view, the root certificate and the shorter /route/ wait."""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from protocol.vast_tickets import load_rsa_public_key, rsa_key_id
from pyworker.tickets.verifier import TicketScheme, TicketVerifier
from router.http.app import create_app
from router.vast.wire import endpoint_id
from tests.integration.router.routers import ClientFactory, router_settings

API_KEY = "vast-routes-key"
WORKER_TOKEN = "vast-routes-token"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
VAST_AGENT = {"User-Agent": "vastai-sdk/1.9.1"}
WORKER_URL = "http://127.0.0.1:9"


async def router(
    aiohttp_client: ClientFactory, tmp_path: Path, **overrides: Any
) -> TestClient[Any, Any]:
    fields = {
        "api_key": API_KEY,
        "worker_token": WORKER_TOKEN,
        "allow_anonymous_workers": True,  # Vast's PyWorker: the shared token, as `mtoken`
        "ticket_scheme": "vast-url",
        "public_status": True,  # the tests read /status to see the workers
    }
    return await aiohttp_client(create_app(router_settings(tmp_path, **{**fields, **overrides})))


def vast_report(**changes: Any) -> dict[str, Any]:
    report = {"id": 11, "url": WORKER_URL, "mtoken": WORKER_TOKEN, "loadtime": 3.0}
    return {**report, "max_perf": 40.0, "cur_load": 0.0, "error_msg": "", **changes}


async def test_rsa_tickets_verify_with_the_pem_at_pubkey(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await router(aiohttp_client, tmp_path)
    assert (await client.post("/worker_status/", json=vast_report())).status == 200
    pem = await (await client.get("/pubkey/")).text()
    public_key = load_rsa_public_key(pem)
    [published] = (await (await client.get("/keys")).json())["keys"]
    assert (published["alg"], published["public_key"]) == ("RSA", pem)
    response = await client.post("/route/", json={"endpoint": "default", "cost": 5}, headers=AUTH)
    ticket = await response.json()
    verifier = TicketVerifier(
        WORKER_URL,
        {rsa_key_id(public_key): public_key},
        endpoint="default",
        clock=time.time,
        scheme=TicketScheme.VAST_URL,
    )
    facts = verifier.verify(ticket, workload=5)  # our own PyWorker accepts it too
    assert (facts.url, facts.cost) == (WORKER_URL, 5)


async def test_a_vast_report_with_the_wrong_mtoken_is_refused(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await router(aiohttp_client, tmp_path)
    response = await client.post("/worker_status/", json=vast_report(mtoken="guess"))
    assert response.status == 401
    assert (await response.json())["error_type"] == "unauthorized"
    assert (await (await client.get("/status")).json())["endpoints"][0]["workers"] == []


async def test_a_loading_vast_worker_gets_no_route(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await router(aiohttp_client, tmp_path)
    report = vast_report(loadtime=0.0, max_perf=0.0)
    assert (await client.post("/worker_status/", json=report)).status == 200
    [worker] = (await (await client.get("/status")).json())["endpoints"][0]["workers"]
    assert worker["state"] == "loading"
    response = await client.post(
        "/route/", json={"endpoint": "default", "cost": 5, "request_idx": 0}, headers=AUTH
    )
    answer = await response.json()
    assert "url" not in answer
    assert answer["request_idx"] >= 1  # 0, as Vast's client first sends, means "a new request"


async def test_delete_requests_is_acknowledged_for_the_right_token(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await router(aiohttp_client, tmp_path)
    body = {"worker_id": 11, "mtoken": WORKER_TOKEN, "requests": [{"request_idx": 1}]}
    response = await client.post("/delete_requests/", json=body)
    assert (response.status, await response.json()) == (200, {"accepted": 1, "released": 0})
    response = await client.post("/delete_requests/", json={**body, "mtoken": "guess"})
    assert response.status == 401
    response = await client.post("/delete_requests/", data=b"{not json")
    assert (response.status, (await response.json())["error_type"]) == (400, "bad_request")


def ended(request_idx: Any, status: str = "Success") -> dict[str, Any]:
    """One entry of `/delete_requests/` exactly as Vast's PyWorker (vastai 1.9.1) sends it."""
    now = time.time()
    return {
        "request_idx": request_idx,
        "success": status == "Success",
        "status": status,
        "entered_queue_at": now - 1.0,
        "work_started_at": now - 0.9,
        "work_completed_at": now,
    }


async def expected_load(client: TestClient[Any, Any]) -> float:
    [worker] = (await (await client.get("/status")).json())["endpoints"][0]["workers"]
    load: float = worker["expected_load"]
    return load


async def test_a_request_the_pyworker_reports_ended_hands_its_cost_back_at_once(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """Without waiting for a status report (none comes here: `ticket_settle_s` is irrelevant),
    each ticket whose `request_idx` the worker says has ended stops counting, once."""
    client = await router(aiohttp_client, tmp_path)
    assert (await client.post("/worker_status/", json=vast_report())).status == 200
    tickets = []
    for cost in (5, 7, 11):
        response = await client.post(
            "/route/", json={"endpoint": "default", "cost": cost}, headers=AUTH
        )
        tickets.append(await response.json())
    assert await expected_load(client) == 23
    body = {
        "worker_id": 11,
        "mtoken": WORKER_TOKEN,
        "requests": [
            ended(tickets[0]["request_idx"]),
            ended(tickets[2]["request_idx"], "Rejected"),
        ],
    }
    response = await client.post("/delete_requests/", json=body)
    assert (response.status, await response.json()) == (200, {"accepted": 2, "released": 2})
    assert await expected_load(client) == 7
    response = await client.post("/delete_requests/", json=body)  # its retry: nothing twice
    assert (response.status, await response.json()) == (200, {"accepted": 2, "released": 0})
    assert await expected_load(client) == 7
    other = {**body, "worker_id": 12, "requests": [ended(tickets[1]["request_idx"])]}
    assert (await (await client.post("/delete_requests/", json=other)).json())["released"] == 0
    odd = [ended(None), ended("1"), ended(True), {"status": "Success"}, "x"]
    response = await client.post("/delete_requests/", json={**body, "requests": odd})
    assert (response.status, await response.json()) == (200, {"accepted": 5, "released": 0})
    assert await expected_load(client) == 7
    response = await client.post("/delete_requests/", json={**body, "requests": {"a": 1}})
    assert (response.status, (await response.json())["error_type"]) == (422, "validation")


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/api/v0/endptjobs/", {}, 401),
        ("/api/v0/endptjobs/", {"Authorization": "Bearer guess"}, 401),
        ("/api/v0/endptjobs/?api_key=guess", {}, 401),
        ("/api/v0/endptjobs/", AUTH, 200),
        (f"/api/v0/endptjobs/?api_key={API_KEY}", {}, 200),
        (f"/api/v0/endptjobs/{endpoint_id('default')}/", AUTH, 200),
        ("/api/v0/endptjobs/12345/", AUTH, 404),
    ],
)
async def test_the_endpoint_listing_needs_the_key(
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    path: str,
    headers: dict[str, str],
    status: int,
) -> None:
    client = await router(aiohttp_client, tmp_path)
    response = await client.get(path, headers=headers)
    assert response.status == status
    body = await response.json()
    if status == 200:
        records = body["results"] if "results" in body else [body["result"]]
        assert [(r["endpoint_name"], r["api_key"]) for r in records] == [("default", API_KEY)]
    else:
        assert body["error"]


async def test_the_workers_view_needs_the_key_and_the_id(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await router(aiohttp_client, tmp_path)
    assert (await client.post("/worker_status/", json=vast_report())).status == 200
    good = {"id": endpoint_id("default"), "api_key": API_KEY}
    response = await client.post("/get_endpoint_workers/", json=good)
    [worker] = await response.json()
    assert (worker["id"], worker["status"], worker["url"]) == (11, "IDLE", WORKER_URL)
    response = await client.post("/get_endpoint_workers/", json={**good, "api_key": "guess"})
    assert response.status == 401
    response = await client.post("/get_endpoint_workers/", json={**good, "id": 1})
    assert response.status == 404


async def test_the_root_certificate_is_the_configured_one(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    client = await router(aiohttp_client, tmp_path, vast_root_ca_file=ca)
    response = await client.get("/static/jvastai_root.cer")
    assert (response.status, await response.text()) == (200, ca.read_text())


async def test_vasts_client_waits_less_than_its_own_10_s_timeout(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await router(aiohttp_client, tmp_path, route_timeout_s=30.0, vast_route_wait_s=0.3)
    started = time.monotonic()
    response = await client.post(
        "/route/", json={"endpoint": "default", "cost": 5}, headers={**AUTH, **VAST_AGENT}
    )
    assert "url" not in await response.json()
    assert time.monotonic() - started < 5.0


async def test_the_admin_key_lists_every_endpoint_with_its_key(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    client = await router(aiohttp_client, tmp_path, admin_key="admin")
    admin = {"Authorization": "Bearer admin"}
    body = {"name": "chat", "api_key": "chat-key", "max_workers": 3, "cold_workers": 1}
    assert (await client.post("/api/v0/endpoints/", json=body, headers=admin)).status == 201
    listing = await (await client.get("/api/v0/endptjobs/", headers=admin)).json()
    records = {r["endpoint_name"]: r for r in listing["results"]}
    assert {name: r["api_key"] for name, r in records.items()} == {
        "default": API_KEY,
        "chat": "chat-key",
    }
    assert (records["chat"]["max_workers"], records["chat"]["endpoint_state"]) == (3, "active")
    own = await (await client.get("/api/v0/endptjobs/", headers=AUTH)).json()
    assert [r["endpoint_name"] for r in own["results"]] == ["default"]


def test_a_configured_root_certificate_that_is_missing_stops_the_start(tmp_path: Path) -> None:
    # Found at start, not as a 500 on every request of Vast's client.
    with pytest.raises(ValueError, match=r"vast_root_ca_file|TGIS_VAST_ROOT_CA"):
        router_settings(tmp_path, vast_root_ca_file=tmp_path / "missing.pem")


async def test_with_no_certificate_at_all_the_answer_says_what_to_set(
    aiohttp_client: ClientFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_bundle = ssl.DefaultVerifyPaths(None, None, "", "", "", "")  # type: ignore[arg-type]
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: no_bundle)
    client = await router(aiohttp_client, tmp_path)
    response = await client.get("/static/jvastai_root.cer")
    assert response.status == 404
    assert "TGIS_VAST_ROOT_CA" in (await response.json())["error"]
