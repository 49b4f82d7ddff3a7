"""The PyWorker's production behaviour, in process, against fakes that speak the wire formats.

Vast's RSA tickets against a router stand-in (`tests.fakes.fake_router`) that serves `/pubkey/`
and records reports;
unsecured mode; admission (429, the concurrency cap); the relay's timeouts and a slow reader;
supervision from the backend's log and the startup benchmark; metrics; drain; TLS. After
each, the worker's in-flight counters are back to zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from protocol.vast_tickets import VastVariant, sign_vast_ticket
from pyworker.app import create_app
from pyworker.command import ssl_context
from pyworker.settings import WorkerSettings
from pyworker.state import GATE, LIFECYCLE, LOAD
from tests.fakes.fake_router import StandInRouter
from tests.fakes.fake_tgi import FakeTGI, expected_stream
from tests.integration.pyworker.stack import (
    PAYLOAD,
    ServerFactory,
    serve_worker,
    url_of,
    wait_until,
)


@dataclass
class VastStack:
    router: StandInRouter
    worker: TestServer
    backend: FakeTGI
    http: aiohttp.ClientSession
    variant: VastVariant
    reqnum: int = 0

    @property
    def url(self) -> str:
        return str(self.worker.make_url("")).rstrip("/")

    def ticket(self, cost: int = 3, **overrides: Any) -> dict[str, Any]:
        self.reqnum += 1
        fields = {"cost": cost, "endpoint": "default", "reqnum": self.reqnum, "url": self.url}
        return sign_vast_ticket(self.router.key, {**fields, **overrides}, self.variant)

    async def post(self, path: str, body: Any) -> aiohttp.ClientResponse:
        return await self.http.post(f"{self.url}{path}", json=body)

    async def generate(self) -> aiohttp.ClientResponse:
        """POST /generate with the usual payload and a fresh ticket for it."""
        return await self.post("/generate", {"auth_data": self.ticket(), "payload": PAYLOAD})

    def assert_idle(self) -> None:
        load = self.worker.app[LOAD]
        assert (load.in_flight_workload, load.requests_working) == (0, 0)


async def serve_vast_worker(
    aiohttp_server: ServerFactory, router: StandInRouter, backend: FakeTGI, **fields: Any
) -> TestServer:
    """A PyWorker of Vast's scheme (`fields` add to or replace its settings) between `router`
    and `backend`, both served here."""
    router_server = await aiohttp_server(router.app())
    backend_server = await aiohttp_server(backend.app())
    fields = {
        "worker_id": "vast-1",
        "ticket_scheme": "vast",
        "key_refresh_interval_s": 0.0,
        **fields,
    }
    return await serve_worker(
        aiohttp_server, url_of(router_server), url_of(backend_server), **fields
    )


@contextlib.asynccontextmanager
async def vast_stack(
    aiohttp_server: ServerFactory,
    backend: FakeTGI,
    *,
    variant: VastVariant = VastVariant.LEGACY,
    **fields: Any,
) -> AsyncIterator[VastStack]:
    router = StandInRouter()
    scheme = "vast" if variant is VastVariant.LEGACY else "vast-url"
    worker = await serve_vast_worker(
        aiohttp_server, router, backend, ticket_scheme=scheme, **fields
    )
    backend.received.clear()  # forget the start-up benchmark
    async with aiohttp.ClientSession() as http:
        yield VastStack(router, worker, backend, http, variant)


@pytest.fixture
async def vast(aiohttp_server: ServerFactory) -> AsyncIterator[VastStack]:
    async with vast_stack(aiohttp_server, FakeTGI()) as running:
        yield running


@pytest.mark.parametrize("variant", list(VastVariant))
async def test_vast_tickets_of_both_variants_are_checked(
    aiohttp_server: ServerFactory, variant: VastVariant
) -> None:
    async with vast_stack(aiohttp_server, FakeTGI(), variant=variant) as stack:
        ok = await stack.generate()
        assert ok.status == 200
        wrong = await stack.post(
            "/generate", {"auth_data": stack.ticket(url="http://x:1"), "payload": PAYLOAD}
        )
        assert (wrong.status, (await wrong.json())["reason"]) == (403, "wrong_url")
        forged = {**stack.ticket(), "url": "http://x:1"}
        forged_answer = await stack.post("/generate", {"auth_data": forged, "payload": PAYLOAD})
        assert (await forged_answer.json())["reason"] == "bad_signature"
        assert len(stack.backend.payloads("/generate")) == 1
        stack.assert_idle()


async def test_a_rotated_vast_key_is_fetched_again(vast: VastStack) -> None:
    fetches = vast.router.key_fetches
    vast.router.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = await vast.post("/generate", {"auth_data": vast.ticket(), "payload": PAYLOAD})
    assert response.status == 200
    assert vast.router.key_fetches == fetches + 1
    vast.assert_idle()


async def test_refetching_keys_is_rate_limited(aiohttp_server: ServerFactory) -> None:
    async with vast_stack(aiohttp_server, FakeTGI(), key_refresh_interval_s=60) as stack:
        fetches = stack.router.key_fetches
        forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        for _ in range(5):
            fields = {"cost": 3, "endpoint": "e", "reqnum": 1, "url": stack.url}
            forged = sign_vast_ticket(forger, fields, VastVariant.LEGACY)
            answer = await stack.post("/generate", {"auth_data": forged, "payload": PAYLOAD})
            assert answer.status == 401
        assert stack.router.key_fetches <= fetches + 1
        assert stack.backend.received == []


async def test_unsecured_mode_relays_without_tickets_and_says_so_everywhere(
    aiohttp_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    async with vast_stack(aiohttp_server, FakeTGI(), unsecured=True) as stack:
        response = await stack.post("/generate", {"payload": PAYLOAD})
        assert response.status == 200
        await wait_until(lambda: len(stack.router.reports) >= 2)
        assert all(report["unsecured"] for report in stack.router.reports)
        assert all("UNSECURED" in report["warnings"][0] for report in stack.router.reports)
        health = await (await stack.http.get(f"{stack.url}/health")).json()
        assert "UNSECURED" in health["warnings"][0]
        assert stack.router.key_fetches == 0
        stack.assert_idle()
    assert any("UNSECURED" in record.getMessage() for record in caplog.records)


async def test_a_request_that_would_wait_too_long_gets_429(aiohttp_server: ServerFactory) -> None:
    backend = FakeTGI()
    async with vast_stack(aiohttp_server, backend, max_queue_time_s=1) as stack:
        backend.gate = asyncio.Event()  # the benchmark is over: hold what comes next
        # 1 token/s: 3 tokens in flight = 3 s
        stack.worker.app[LOAD].capacity.start_from(1.0, saturation_requests=1)
        first = asyncio.create_task(stack.generate())
        await wait_until(lambda: stack.worker.app[LOAD].requests_working == 1)
        refused = await stack.generate()
        assert refused.status == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert (await refused.json())["error_type"] == "overloaded"
        backend.gate.set()
        assert (await first).status == 200
        stack.assert_idle()


async def test_the_concurrency_cap_holds_requests_in_a_queue(
    aiohttp_server: ServerFactory,
) -> None:
    backend = FakeTGI()
    async with vast_stack(aiohttp_server, backend, max_concurrency=2) as stack:
        backend.gate, backend.peak_active = asyncio.Event(), 0
        backend.generate_connections.clear()  # the start-up benchmark's were its own
        calls = [asyncio.create_task(stack.generate()) for _ in range(6)]
        gate = stack.worker.app[GATE]
        await wait_until(lambda: gate.waiting == 4)
        # The two holding a slot may still be on their way to the backend.
        await wait_until(lambda: backend.active == 2)
        assert stack.worker.app[LIFECYCLE].state.value == "busy"  # still routable
        await wait_until(lambda: "busy" in stack.router.states())
        backend.gate.set()
        assert [r.status for r in await asyncio.gather(*calls)] == [200] * 6
        assert backend.peak_active == 2
        assert len(backend.generate_connections) == 2  # kept alive and reused, never more
        assert stack.worker.app[LIFECYCLE].state.value == "ready"
        stack.assert_idle()


async def test_the_cap_defaults_to_the_backends_max_concurrent_requests(vast: VastStack) -> None:
    assert vast.worker.app[GATE].limit == 128


@pytest.mark.parametrize(
    ("limit", "stall", "status", "error_type", "said"),
    [
        pytest.param(
            {"first_byte_timeout_s": 0.3},
            {"first_byte_delay_s": 30},
            504,
            "backend_timeout",
            "0.3s",
            id="no-first-byte-in-time",
        ),
        pytest.param(
            {"stream_idle_timeout_s": 0.3},
            {"mode": "stall_body"},
            502,
            "backend_unavailable",
            "mid-answer",
            id="a-body-that-stops-coming",
        ),
    ],
)
async def test_a_backend_that_stalls_is_timed_out_and_let_go(
    aiohttp_server: ServerFactory,
    limit: dict[str, Any],
    stall: dict[str, Any],
    status: int,
    error_type: str,
    said: str,
) -> None:
    backend = FakeTGI()
    async with vast_stack(aiohttp_server, backend, **limit) as stack:
        for name, value in stall.items():
            setattr(backend, name, value)
        response = await stack.generate()
        assert response.status == status
        answer = await response.json()
        assert answer["error_type"] == error_type
        assert said in answer["error"]
        await wait_until(lambda: backend.active == 0)  # the backend's connection was dropped
        stack.assert_idle()


async def test_a_slow_stream_is_not_capped_but_a_silent_one_is_ended(
    aiohttp_server: ServerFactory,
) -> None:
    backend = FakeTGI(mode="slow_stream", tokens=4)  # 0.2 s between events, 0.6 s in all
    async with vast_stack(aiohttp_server, backend, stream_idle_timeout_s=0.5) as stack:
        body = {"auth_data": stack.ticket(4), "payload": PAYLOAD}
        healthy = await stack.post("/generate_stream", body)
        assert await healthy.read() == expected_stream(4)
        backend.mode = "stall_stream"
        stalled = await stack.post("/generate_stream", {**body, "auth_data": stack.ticket(4)})
        text = (await stalled.read()).decode()
        assert text.startswith('data: {"index":1')
        assert text.endswith('"error_type":"incomplete_generation_stream"}\n\n')
        await wait_until(lambda: stack.worker.app[LOAD].requests_working == 0)
        metrics = await (await stack.http.get(f"{stack.url}/metrics")).text()
        assert 'tgis_worker_relay_errors_total{kind="idle_timeout"} 1.0' in metrics
        stack.assert_idle()


async def test_a_slow_reader_holds_the_backend_back(aiohttp_server: ServerFactory) -> None:
    backend = FakeTGI(tokens=2000, event_padding=32 * 1024)  # a 64 MiB stream
    async with vast_stack(aiohttp_server, backend) as stack:
        body = {"auth_data": stack.ticket(2000), "payload": PAYLOAD}
        response = await stack.post("/generate_stream", body)
        assert response.status == 200
        await response.content.readexactly(1024)
        await asyncio.sleep(1.0)  # read nothing more for a while
        sent = backend.stream_bytes_sent
        assert sent < 24 * 1024 * 1024, sent  # socket buffers, not the stream
        print(f"slow reader: the backend got {sent} bytes out")
        response.close()
        await wait_until(lambda: stack.worker.app[LOAD].requests_working == 0)
        stack.assert_idle()


async def test_the_startup_benchmark_is_concurrent_and_checks_every_status(
    aiohttp_server: ServerFactory,
) -> None:
    backend = FakeTGI(mode="error_500", first_byte_delay_s=0.05)
    router = StandInRouter()
    worker = await serve_vast_worker(
        aiohttp_server, router, backend, benchmark_concurrency=4, wait_until_serving=False
    )
    lifecycle = worker.app[LIFECYCLE]
    await wait_until(lambda: lifecycle.state.value == "error")
    assert "benchmark" in lifecycle.error_msg
    assert "500" in lifecycle.error_msg
    backend.mode, backend.peak_active = "ok", 0
    await wait_until(lambda: lifecycle.serving)
    assert backend.peak_active == 4
    assert worker.app[LOAD].capacity.startup_perf > 0
    assert "error" in router.states()


async def test_readiness_and_failure_come_from_the_backends_log(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    log = tmp_path / "infer.log"
    log.write_text("Error: ShardCannotStart\n")  # an earlier run's failure: must be ignored
    backend = FakeTGI()
    async with vast_stack(
        aiohttp_server, backend, model_log=str(log), health_interval_s=30
    ) as stack:
        lifecycle = stack.worker.app[LIFECYCLE]
        with log.open("a") as handle:
            handle.write('{"message":"Error: DownloadError","target":"launcher"}\n')
        await wait_until(lambda: lifecycle.state.value == "error")
        assert "DownloadError" in lifecycle.error_msg
        refused = await stack.generate()
        assert refused.status == 503
        with log.open("a") as handle:
            handle.write(
                '{"level":"INFO","message":"Connected","target":"text_generation_router::server"}\n'
            )
        await wait_until(lambda: lifecycle.serving)
        assert lifecycle.error_msg == ""
        assert "error" in stack.router.states()
        stack.assert_idle()


async def test_a_log_failure_keeps_the_worker_out_even_if_health_says_ok(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    log = tmp_path / "infer.log"
    log.write_text('{"message":"Connected","target":"text_generation_router"}\n')
    backend = FakeTGI(healthy=False)  # an old "Connected" line must not make it ready
    worker = await serve_vast_worker(
        aiohttp_server, StandInRouter(), backend, model_log=str(log), wait_until_serving=False
    )
    lifecycle = worker.app[LIFECYCLE]
    await wait_until(lambda: lifecycle.state.value == "loading")
    await asyncio.sleep(0.5)
    assert lifecycle.state.value == "loading"
    with log.open("a") as handle:
        handle.write("Error: WebserverFailed\n")
    await wait_until(lambda: lifecycle.state.value == "error")
    backend.healthy = True
    await asyncio.sleep(1.0)
    assert lifecycle.state.value == "error"  # healthy, but the log said it failed


async def test_metrics_count_outcomes_rejections_and_latencies(vast: VastStack) -> None:
    assert (await vast.post("/generate", {"auth_data": vast.ticket(), "payload": PAYLOAD})).ok
    forged = {**vast.ticket(), "cost": 10**6}
    assert (await vast.post("/generate", {"auth_data": forged, "payload": PAYLOAD})).status == 401
    response = await vast.http.get(f"{vast.url}/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    for line in (
        'tgis_worker_requests_total{outcome="success"} 1.0',
        'tgis_worker_requests_total{outcome="rejected_ticket_rejected"} 1.0',
        'tgis_worker_ticket_rejections_total{reason="bad_signature"} 1.0',
        "tgis_worker_queue_time_seconds_count 1.0",
        "tgis_worker_time_to_first_byte_seconds_count 1.0",
        "tgis_worker_in_flight_workload 0.0",
        "tgis_worker_generated_tokens_total 3.0",  # the fake backend's x-generated-tokens
        'tgis_worker_state{state="ready"} 1.0',
    ):
        assert line in text, line
    documented = {  # docs/pyworker.md, Operations
        "tgis_worker_requests_total": "counter",
        "tgis_worker_generated_tokens_total": "counter",
        "tgis_worker_ticket_rejections_total": "counter",
        "tgis_worker_relay_errors_total": "counter",
        "tgis_worker_queue_time_seconds": "histogram",
        "tgis_worker_time_to_first_byte_seconds": "histogram",
        "tgis_worker_in_flight_workload": "gauge",
        "tgis_worker_requests_in_flight": "gauge",
        "tgis_worker_requests_queued": "gauge",
        "tgis_worker_max_perf": "gauge",
        "tgis_worker_state": "gauge",
    }
    for name, kind in documented.items():
        assert f"# TYPE {name} {kind}" in text, name


async def test_ping(vast: VastStack) -> None:
    assert await (await vast.http.get(f"{vast.url}/ping")).text() == "pong"


async def test_shutdown_drains_in_flight_streams_then_reports_stopped(
    aiohttp_server: ServerFactory,
) -> None:
    backend = FakeTGI(mode="slow_stream", tokens=5)
    async with vast_stack(aiohttp_server, backend) as stack:
        body = {"auth_data": stack.ticket(5), "payload": PAYLOAD}
        response = await stack.post("/generate_stream", body)
        await response.content.readline()
        closing = asyncio.create_task(stack.worker.close())
        await wait_until(lambda: stack.worker.app[LIFECYCLE].state.value == "draining")
        assert await response.content.read() != b""  # the stream goes on to its end
        await closing
        states = stack.router.states()
        assert states[-2:] == ["draining", "stopped"]
        stack.assert_idle()


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "instance.crt", tmp_path / "instance.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_with_use_ssl(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    assert ssl_context(WorkerSettings(use_ssl=False)) is None
    settings = WorkerSettings(
        use_ssl=True,
        ssl_cert=str(cert),
        ssl_key=str(key),
        report_addr="http://127.0.0.1:9",
        worker_id="tls",
    )
    assert settings.advertised_url.startswith("https://")
    context = ssl_context(settings)
    assert context is not None
    server = await aiohttp_server(create_app(settings), ssl=context)
    client_context = ssl.create_default_context(cafile=str(cert))
    client_context.check_hostname = False
    async with aiohttp.ClientSession() as http:
        url = str(server.make_url("/ping"))
        assert url.startswith("https://")
        async with http.get(url, ssl=client_context) as response:
            assert await response.text() == "pong"


async def test_a_parked_worker_refuses_requests_and_reports_parked_then_resumes_at_once(
    aiohttp_server: ServerFactory,
) -> None:
    """What the local provider's SIGUSR1 and SIGUSR2 do: parked, the worker answers 503 (the
    client routes again) and reports `parked` without waiting for its report interval; resumed,
    it reports `ready` at once and serves, with the capacity it had measured."""
    async with vast_stack(aiohttp_server, FakeTGI(), report_interval_s=60) as stack:
        lifecycle, router = stack.worker.app[LIFECYCLE], stack.router
        startup_perf = stack.worker.app[LOAD].capacity.startup_perf
        lifecycle.park()
        await wait_until(lambda: router.states()[-1:] == ["parked"])
        refused = await stack.generate()
        assert (refused.status, (await refused.json())["error_type"]) == (503, "not_ready")
        lifecycle.resume()
        await wait_until(lambda: router.states()[-1:] == ["ready"])
        assert (await stack.generate()).status == 200
        assert stack.worker.app[LOAD].capacity.startup_perf == startup_perf
        assert router.reports[-1]["startup_perf"] == startup_perf
