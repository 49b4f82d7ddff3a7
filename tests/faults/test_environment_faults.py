"""Faults of the environment around the processes: a worker cut off from the router, a backend
that stalls, the router's state directory full, a worker's clock off. Each case prints what it
measured, and asserts what docs/reliability.md ("Faults") promises."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from client import Ticket
from tests.e2e.processes import ADMIN_AUTH, get_json, post
from tests.faults.fault_stack import API_KEY, PROMPT, Stack, running_stack, worker_metric
from tests.faults.network_namespace import namespace_unavailable, network_namespace
from tests.faults.small_disk import fill, small_disk, small_disk_unavailable, stored_files
from tests.faults.stalling_proxy import Stall, StallingProxy, stalling_proxy

STALE_S = 3.0
STALE_ROUTER = {
    "TGIS_WORKER_STALE_S": str(STALE_S),
    "TGIS_ROUTE_TIMEOUT_S": "0",
    "TGIS_NO_WORKER_REPLY": "retry",
}


def measured(case: str, **figures: float) -> None:
    """Print a case's figures: `name_s=1.5` as "name 1.50 s", a count as it is."""
    shown = ", ".join(_figure(name, value) for name, value in figures.items())
    print(f"\n[faults] {case}: {shown}")


def _figure(name: str, value: float) -> str:
    if name.endswith("_s"):
        return f"{name[:-2].replace('_', ' ')} {value:.2f} s"
    return f"{name.replace('_', ' ')} {value}"


def route_status(stack: Stack) -> int:
    status, _ = post(
        f"{stack.router_url}/route/",
        {"endpoint": "default", "cost": 8},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    return status


# (e) A worker cut off from the router ---------------------------------------------------------


@pytest.mark.skipif(namespace_unavailable() is not None, reason=str(namespace_unavailable()))
def test_a_worker_cut_off_from_the_router_serves_its_tickets_and_comes_back(
    tmp_path: Path, tgis_cache_dir: Path
) -> None:
    with (
        network_namespace() as namespace,
        running_stack(
            tmp_path,
            tgis_cache_dir,
            router_env=STALE_ROUTER,
            router_host="0.0.0.0",
            worker_host=namespace.worker_address,
            inside=namespace.prefix,
            router_url_for_worker=lambda url: url.replace("127.0.0.1", namespace.router_address),
        ) as stack,
    ):
        tickets = [stack.ticket() for _ in range(4)]
        namespace.cut_control()
        cut_at = time.monotonic()
        try:
            served = [stack.generate(ticket)[0] for ticket in tickets]
            stack.wait("the worker stale", lambda: stack.worker_view() == "stale", 30)
            detect_s = time.monotonic() - cut_at  # its tickets served meanwhile
            assert route_status(stack) == 503  # out of rotation: no ticket for it
            late = stack.generate(tickets[-1])[0]  # its reqnum is spent: refused, not served
        finally:
            namespace.restore_control()
        recover_s = stack.wait("the worker ready again", lambda: stack.worker_view() == "ready")
        after = stack.generate(stack.ticket())[0]
    lost = sum(status != 200 for status in served)
    measured(
        "worker cut off from the router",
        time_to_detect_s=detect_s,
        time_to_recover_s=recover_s,
        requests_lost=lost,
    )
    assert lost == 0, served
    assert late == 403
    assert detect_s < STALE_S + 5
    assert after == 200


# (f) A backend that stalls --------------------------------------------------------------------

WORKER_TIMEOUTS = {"TGIS_FIRST_BYTE_TIMEOUT_S": "4", "TGIS_STREAM_IDLE_TIMEOUT_S": "4"}
GATEWAY_TIMEOUTS = {
    "TGIS_GATEWAY_FIRST_BYTE_TIMEOUT_S": "1.5",
    "TGIS_GATEWAY_IDLE_TIMEOUT_S": "1.5",
}


def test_a_stalled_backend_times_out_once_and_leaves_no_load(
    tmp_path: Path, tgis_cache_dir: Path
) -> None:
    """The worker's timeouts (4 s) fire for a client that talks to it; the gateway's (1.5 s),
    shorter, fire first for a client of the gateway, and the worker then counts a cancellation.
    Either way the client gets a clear error, and the worker's load is back to zero."""
    with contextlib.ExitStack() as proxies:
        proxy_box: list[StallingProxy] = []

        def through_proxy(backend_url: str) -> str:
            proxy = proxies.enter_context(stalling_proxy(int(backend_url.rsplit(":", 1)[1])))
            proxy_box.append(proxy)
            return proxy.url

        with running_stack(
            tmp_path,
            tgis_cache_dir,
            router_env=GATEWAY_TIMEOUTS,
            worker_env=WORKER_TIMEOUTS,
            backend_url_for_worker=through_proxy,
        ) as stack:
            proxy = proxy_box[0]
            assert stack.generate(stack.ticket())[0] == 200
            _worker_stalls(stack, proxy)
            _gateway_stalls(stack, proxy)


def _no_load(stack: Stack) -> bool:
    return (
        worker_metric(stack.worker_url, "tgis_worker_in_flight_workload") == 0
        and worker_metric(stack.worker_url, "tgis_worker_requests_in_flight") == 0
    )


def _relay_errors(stack: Stack, kind: str) -> float:
    return worker_metric(stack.worker_url, "tgis_worker_relay_errors_total", f'kind="{kind}"')


def _worker_stalls(stack: Stack, proxy: StallingProxy) -> None:
    proxy.stall = Stall.BEFORE_FIRST_BYTE
    started = time.monotonic()
    status, body = stack.generate(stack.ticket())
    detect_s = time.monotonic() - started
    release_s = stack.wait("no load on the worker", lambda: _no_load(stack), 10)
    measured(
        "backend stalls before the first byte (worker's timeout, 4 s)",
        time_to_detect_s=detect_s,
        load_released_after_s=release_s,
    )
    assert status == 504
    assert json.loads(body)["error_type"] == "backend_timeout"
    assert 4 <= detect_s < 10
    assert _relay_errors(stack, "backend_timeout") == 1

    proxy.stall = Stall.AFTER_FIRST_EVENT
    started = time.monotonic()
    status, body = stack.generate(stack.ticket(16), max_new_tokens=16, stream=True)
    detect_s = time.monotonic() - started
    release_s = stack.wait("no load on the worker", lambda: _no_load(stack), 10)
    measured(
        "backend stalls mid-stream (worker's idle timeout, 4 s)",
        time_to_detect_s=detect_s,
        load_released_after_s=release_s,
    )
    events = [line for line in body.decode().splitlines() if line.startswith("data:")]
    assert status == 200
    assert len(events) == 2, body
    assert '"token"' in events[0]
    assert '"error"' in events[-1]
    assert 4 <= detect_s < 10
    assert _relay_errors(stack, "idle_timeout") == 1
    assert _relay_errors(stack, "backend_timeout") == 1  # the first case's, counted once


def _gateway_stalls(stack: Stack, proxy: StallingProxy) -> None:
    gateway = f"{stack.router_url}/endpoints/default"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    payload = {"inputs": PROMPT, "parameters": {"max_new_tokens": 16}}
    cancelled_before = worker_metric(
        stack.worker_url, "tgis_worker_requests_total", 'outcome="cancelled"'
    )
    for stall, path in (
        (Stall.BEFORE_FIRST_BYTE, "/generate"),
        (Stall.AFTER_FIRST_EVENT, "/generate_stream"),
    ):
        proxy.stall = stall
        stack.wait("the worker ready", lambda: stack.worker_view() == "ready", 30)
        started = time.monotonic()
        status, body = post(gateway + path, payload, headers=headers)
        detect_s = time.monotonic() - started
        release_s = stack.wait("no load on the worker", lambda: _no_load(stack), 10)
        measured(
            f"backend stalls {stall.value} (gateway's timeout, 1.5 s)",
            time_to_detect_s=detect_s,
            load_released_after_s=release_s,
        )
        assert 1.5 <= detect_s < 4  # the gateway's deadline, not the worker's
        if stall is Stall.BEFORE_FIRST_BYTE:
            assert status == 502
            assert json.loads(body)["error_type"] == "worker_failed", body
        else:
            events = [line for line in body.decode().splitlines() if line.startswith("data:")]
            assert status == 200
            assert '"error"' in events[-1], body
    cancelled = worker_metric(stack.worker_url, "tgis_worker_requests_total", 'outcome="cancelled"')
    assert cancelled - cancelled_before == 2
    log = stack.router.output()  # the gateway's failures are logged, once each
    assert log.count("failed a gateway request: timed out") == 1
    assert log.count("its stream broke after the first event (timed out)") == 1
    failures = "tgis_gateway_worker_failures_total"  # and counted once each, by kind
    for kind in ("timeout", "idle_timeout"):
        labels = f'endpoint="default",kind="{kind}"'
        assert worker_metric(stack.router_url, failures, labels) == 1, kind
    assert _relay_errors(stack, "backend_timeout") == 1  # still only the worker's own case
    assert _relay_errors(stack, "idle_timeout") == 1


# (g) The router's state directory full --------------------------------------------------------


@pytest.mark.skipif(small_disk_unavailable() is not None, reason=str(small_disk_unavailable()))
def test_a_full_state_directory_fails_loudly_corrupts_nothing_and_recovers(
    tmp_path: Path, tgis_cache_dir: Path
) -> None:
    """A block of 10 reqnums: the router stores its next ceiling after 5 tickets, so the full
    disk shows within a few requests (by default a block is 100,000)."""
    with (
        small_disk(tmp_path / "state", size_kib=512) as state,
        running_stack(
            tmp_path, tgis_cache_dir, state_dir=state, router_env={"TGIS_REQNUM_BLOCK": "10"}
        ) as stack,
    ):
        filler = fill(state)
        stored = stored_files(state)
        served, refusal = 0, None
        full_at = time.monotonic()
        for _ in range(30):
            status, answer = post(
                f"{stack.router_url}/route/",
                {"endpoint": "default", "cost": 8},
                headers={"Authorization": f"Bearer {API_KEY}"},
            )
            if status != 200:
                refusal = (status, json.loads(answer))
                break
            served += stack.generate(Ticket(json.loads(answer)))[0] == 200
        refused_after_s = time.monotonic() - full_at
        management = f"{stack.router_url}/api/v0/endpoints/"
        created = post(management, {"name": "while-full"}, headers=ADMIN_AUTH)
        held = get_json(f"{management}while-full", headers=ADMIN_AUTH)[0]
        after_failures = stored_files(state)
        filler.unlink()
        recover_s = stack.wait("tickets again", lambda: route_status(stack) == 200, 30)
        after = stack.generate(stack.ticket())[0]
        changed = patch(f"{management}while-full", {"endpoint_state": "suspended"}, ADMIN_AUTH)
        endpoints_now = (state / "endpoints.json").read_bytes()
        log = stack.router.output()
    measured(
        "router state directory full",
        tickets_served_while_full=served,
        refused_after_s=refused_after_s,
        time_to_recover_s=recover_s,
    )
    assert served >= 5  # what the stored ceiling covers
    assert refusal is not None
    assert refusal[0] == 503, refusal
    assert refusal[1]["error_type"] == "unavailable", refusal
    assert created[0] == 503
    assert json.loads(created[1])["error_type"] == "unavailable"
    assert held == 200  # the change holds in memory ...
    assert changed == 200
    assert b"while-full" in endpoints_now
    assert "No space left on device" in log
    assert after_failures == stored, "a stored file changed while the disk was full"
    assert all(json.loads(data) for name, data in stored.items() if name.endswith(".json"))
    assert after == 200


def patch(url: str, body: object, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


# (h) A worker's clock 30 s off ----------------------------------------------------------------

AHEAD_S = 30


LIBFAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))), None)
"""Debian's `faketime` package's library (preloaded into the worker itself: the `faketime`
command would put a process of its own between the test and the worker)."""


@pytest.mark.skipif(LIBFAKETIME is None, reason="libfaketime (Debian's `faketime`) is needed")
def test_a_worker_whose_clock_is_30_s_ahead_checks_expiry_by_the_routers_clock(
    tmp_path: Path, tgis_cache_dir: Path
) -> None:
    """The worker runs with libfaketime preloaded (LD_PRELOAD), its clock 30 s ahead; tickets
    live 20 s. By its own clock the worker would find every ticket expired on arrival
    (30 s > 20 s + the 5 s allowance); it checks them by the router's clock instead, which its
    reports' answers tell it."""
    with running_stack(
        tmp_path,
        tgis_cache_dir,
        router_env={"TGIS_TICKET_TTL_S": "20"},
        worker_env={"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": f"+{AHEAD_S}s"},
    ) as stack:
        skew_s = worker_clock(stack.worker_url) - time.time()
        started = time.monotonic()
        served = [stack.generate(stack.ticket())[0] for _ in range(4)]
        took_s = time.monotonic() - started
        log = stack.worker.output()
    lost = sum(status != 200 for status in served)
    measured(
        "worker clock 30 s ahead, 20 s tickets",
        worker_clock_ahead_s=skew_s,
        time_for_4_requests_s=took_s,
        requests_lost=lost,
    )
    assert AHEAD_S - 2 < skew_s < AHEAD_S + 2  # the fault is real: its own clock is ahead
    assert lost == 0, served
    assert "s off the router's" in log  # and it says so


def worker_clock(worker_url: str) -> float:
    """The worker's clock, from the Date of its answer (whole seconds, taken at mid-second)."""
    with urllib.request.urlopen(f"{worker_url}/ping", timeout=5) as answer:
        return parsedate_to_datetime(answer.headers["Date"]).timestamp() + 0.5
