"""Process faults: a backend or a PyWorker killed (SIGKILL), a PyWorker stopped (SIGSTOP) for
longer than the router's staleness limit, the router killed and restarted under load. Each case
prints what it measured (`FAULT ...` lines) and checks what docs/reliability.md promises."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from client import Client, RetryPolicy
from client.errors import TGISError
from protocol import Ticket
from tests.e2e.processes import (
    ManagedProcess,
    post,
    router_status,
    start_up,
    wait_for,
    worker_processes,
)
from tests.faults.fleet import (
    API_KEY,
    TICKET_TTL_S,
    WORKER_STALE_S,
    Fleet,
    kill,
    read_stream,
    report,
    until,
)

pytestmark = pytest.mark.e2e

ENV = {"TGIS_IGNORE_EOS": "true"}  # every stream runs its full length
STREAMS = 8
PROMPT = "Hello"
PATIENT = RetryPolicy(attempts=20, initial_delay=0.1, max_delay=1.0)
"""A client that keeps retrying through a router's restart (a few seconds here)."""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, tgis_cache_dir: Path) -> Iterator[Fleet]:
    """Router, two backends and their PyWorkers (`alpha`, `beta`) as separate processes."""
    logs = tmp_path_factory.mktemp("fault-logs")
    env = {"TGIS_CACHE_DIR": str(tgis_cache_dir), **ENV}
    built = Fleet(logs, env, tmp_path_factory.mktemp("fault-router-state"))
    try:
        built.ensure("alpha", "beta")
        yield built
    finally:
        built.stop()


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def backend_of(up: ManagedProcess, worker_name: str) -> int:
    """The pid of the backend behind `up`'s worker `worker_name` (its PyWorker's backend URL)."""
    children = worker_processes(up.pid)
    pyworker = next(a for a in children.values() if "worker" in a and worker_name in a)
    port = option(pyworker, "--backend-url").rsplit(":", 1)[1]
    return next(
        pid for pid, a in children.items() if "backend" in a and option(a, "--port") == port
    )


def endpoint_workers(router_url: str) -> list[dict[str, object]]:
    _, body = router_status(router_url)
    return list(body["endpoints"][0]["workers"])


def workers_in(router_url: str, state: str) -> list[str]:
    return sorted(str(w["id"]) for w in endpoint_workers(router_url) if w["state"] == state)


def ready(router_url: str) -> list[str]:
    return workers_in(router_url, "ready")


def no_load(router_url: str) -> bool:
    return total_load(router_url) == 0


def total_load(router_url: str) -> float:
    """The load the router counts on the endpoint's workers: reported plus pending tickets."""
    return sum(float(str(w["expected_load"])) for w in endpoint_workers(router_url))


def test_a_backend_killed_mid_stream(tmp_path: Path, tgis_cache_dir: Path) -> None:
    """SIGKILL of a backend under eight streams: each ends at once with TGI's error event, the
    endpoint keeps serving, the autoscaler replaces the worker, and no load stays counted."""
    up, router_url = start_up(tmp_path, tgis_cache_dir, 2, api_key=API_KEY, env=ENV)
    try:
        wait_for("two workers ready", lambda: len(workers_in(router_url, "ready")) == 2, [up], 180)
        urls = {str(w["id"]): str(w["url"]) for w in endpoint_workers(router_url)}
        with Client(router_url, api_key=API_KEY) as client:
            tickets = [client.route(400, avoid=[urls["worker-2"]]) for _ in range(STREAMS)]
            assert {t.url for t in tickets} == {urls["worker-1"]}
            started = threading.Semaphore(0)
            payload = {"inputs": PROMPT, "parameters": {"max_new_tokens": 400}}
            with ThreadPoolExecutor(STREAMS) as pool:
                futures = [pool.submit(read_stream, t, payload, started.release) for t in tickets]
                for _ in tickets:
                    assert started.acquire(timeout=120), "a stream never started"
                killed_at = kill(backend_of(up, "worker-1"))
                outcomes = [f.result(timeout=60) for f in futures]
            detect_s = max(o.ended_at for o in outcomes) - killed_at
            assert all(o.status == 200 and o.error_event is not None for o in outcomes), outcomes
            assert all(o.error_event["error_type"] for o in outcomes if o.error_event)
            served_at = until("a request served", lambda: served(client), 30)
        out_at = until("worker-1 out of rotation", lambda: "worker-1" not in ready(router_url), 60)
        with ThreadPoolExecutor(2) as pool:
            idle = pool.submit(until, "no load counted", lambda: no_load(router_url), 60)
            replaced_at = until("the worker replaced", lambda: len(ready(router_url)) == 2, 120)
            idle_at = idle.result(timeout=60)
        report(
            "backend SIGKILL mid-stream",
            streams=STREAMS,
            error_type=str(outcomes[0].error_event and outcomes[0].error_event["error_type"]),
            tokens_before=min(o.tokens for o in outcomes),
            streams_ended_s=detect_s,
            out_of_rotation_s=out_at - killed_at,
            served_again_s=served_at - killed_at,
            replaced_s=replaced_at - killed_at,
            load_zero_s=idle_at - killed_at,
        )
    finally:
        returncode = up.stop(signal.SIGTERM, grace_s=40)
    assert returncode == 0, up.output()[-3000:]


def served(client: Client) -> bool:
    """One small request through the SDK (its retries included): whether it was answered."""
    try:
        return bool(client.generate(PROMPT, max_new_tokens=3).generated_text)
    except TGISError:
        return False


def through_gateway(router_url: str) -> bool:
    """One small request through the router's gateway: whether it was answered with a 200."""
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 3}}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    status, answer = post(f"{router_url}/endpoints/default/generate", body, headers, 60)
    return status == 200 and bool(json.loads(answer)["generated_text"])


class RetryCounter:
    """Counts the SDK's retries, from its log line for each (`trying again with a new ticket`)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self._caplog = caplog

    @property
    def retries(self) -> int:
        return sum("trying again" in r.getMessage() for r in self._caplog.records)


def test_b_pyworker_killed(fleet: Fleet, caplog: pytest.LogCaptureFixture) -> None:
    """SIGKILL of a PyWorker: requests not yet started there are retried on the other worker, by
    the SDK and by the gateway, and none is lost; the cost of the tickets issued for it stops
    counting once it is stale, without waiting for them to expire."""
    fleet.ensure("alpha", "beta")
    caplog.set_level("INFO", logger="client")
    retries = RetryCounter(caplog)
    requests = 8
    with Client(fleet.router_url, api_key=API_KEY) as client, ThreadPoolExecutor(12) as pool:
        killed_at = kill(fleet.workers["alpha"])
        out = pool.submit(until, "alpha out", lambda: "alpha" not in fleet.ids_in("ready"), 30)
        # The SDK first: the gateway marks alpha failed at its first failure, routing no more.
        sdk = [pool.submit(served, client) for _ in range(requests)]
        answered = [f.result(timeout=120) for f in sdk]
        gateway = [pool.submit(through_gateway, fleet.router_url) for _ in range(requests)]
        answered += [f.result(timeout=120) for f in gateway]
        done_at = time.monotonic()
        out_at = out.result(timeout=60)
    idle_at = until("no load counted", lambda: no_load(fleet.router_url), WORKER_STALE_S + 10)
    assert fleet.router is not None
    gateway_retries = fleet.router.output().count(f"{fleet.worker_url('alpha')} of endpoint")
    report(
        "PyWorker SIGKILL",
        requests=2 * requests,
        lost=answered.count(False),
        sdk_retries=retries.retries,
        gateway_retries=gateway_retries,
        all_answered_s=done_at - killed_at,
        out_of_rotation_s=out_at - killed_at,
        load_zero_s=idle_at - killed_at,
    )
    assert answered.count(False) == 0
    assert retries.retries >= 1, "the SDK sent nothing to the dead worker: nothing was tried"
    assert gateway_retries >= 1, "the gateway sent nothing to the dead worker"
    assert TICKET_TTL_S > WORKER_STALE_S + 10  # the cost came back before the tickets expired


def test_c_pyworker_stopped_past_staleness(fleet: Fleet) -> None:
    """SIGSTOP of a PyWorker for longer than the staleness limit: out of rotation (requests go to
    the other worker), back in rotation on SIGCONT; a request it had taken is served then."""
    fleet.ensure("alpha", "beta")
    victim = fleet.workers["alpha"]
    payload = {"inputs": PROMPT, "parameters": {"max_new_tokens": 3}}
    with Client(fleet.router_url, api_key=API_KEY) as client, ThreadPoolExecutor(1) as pool:
        held = client.route(3, avoid=[fleet.worker_url("beta")])
        assert held.url == fleet.worker_url("alpha")
        stopped_at = time.monotonic()
        os.kill(victim.pid, signal.SIGSTOP)
        try:
            waiting = pool.submit(read_stream, held, payload, lambda: None)
            stale_at = until("alpha stale", lambda: fleet.ids_in("stale") == ["alpha"], 30)
            tickets = [client.route(3) for _ in range(6)]
            answered = sum(served(client) for _ in range(6))
        finally:
            resumed_at = time.monotonic()
            os.kill(victim.pid, signal.SIGCONT)
        back_at = until("alpha ready", lambda: "alpha" in fleet.ids_in("ready"), 30)
        held_outcome = waiting.result(timeout=60)
        routed_back = client.route(3, avoid=[fleet.worker_url("beta")])
    report(
        "PyWorker SIGSTOP past staleness",
        stale_limit_s=WORKER_STALE_S,
        stale_after_s=stale_at - stopped_at,
        stopped_for_s=resumed_at - stopped_at,
        back_after_sigcont_s=back_at - resumed_at,
        lost=6 - answered + (0 if held_outcome.finished else 1),
    )
    assert {t.url for t in tickets} == {fleet.worker_url("beta")}
    assert answered == 6
    assert held_outcome.finished, held_outcome
    assert routed_back.url == fleet.worker_url("alpha")


class Load:
    """`threads` SDK clients sending small requests in a loop until stopped; what they saw."""

    def __init__(self, router_url: str, threads: int) -> None:
        self._router_url = router_url
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.answered = 0
        self.failures: list[str] = []
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        with Client(self._router_url, api_key=API_KEY, retries=PATIENT) as client:
            while not self._stop.is_set():
                try:
                    client.generate(PROMPT, max_new_tokens=3)
                except TGISError as error:
                    with self._lock:
                        self.failures.append(repr(error))
                else:
                    with self._lock:
                        self.answered += 1

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(120)


def post_ticket(ticket: Ticket) -> int:
    """POST a small request to the ticket's worker with it; the status of the answer."""
    body = ticket.worker_body({"inputs": PROMPT, "parameters": {"max_new_tokens": 2}})
    return post(ticket.worker_url("/generate"), body, None, 60)[0]


def test_d_router_killed_and_restarted_under_load(fleet: Fleet) -> None:
    """SIGKILL of the router under load, then a restart: the workers report again, clients
    retry through it and lose nothing, no reqnum is reused and no ticket is accepted twice."""
    fleet.ensure("alpha", "beta")
    urls = {w: fleet.worker_url(w) for w in ("alpha", "beta")}
    load = Load(fleet.router_url, threads=3)
    try:
        with Client(fleet.router_url, api_key=API_KEY) as client:
            before = {
                w: client.route(2, avoid=[u for o, u in urls.items() if o != w]) for w in urls
            }
            assert all(post_ticket(t) == 200 for t in before.values())
            until("load under way", lambda: load.answered >= 5, 60)
            assert fleet.router is not None
            killed_at = kill(fleet.router)
            fleet.start_router()
            up_at = time.monotonic()
            fleet.wait_ready("alpha", "beta", limit_s=60)
            reported_at = time.monotonic()
            answered_then = load.answered
            until("load served again", lambda: load.answered >= answered_then + 5, 60)
            served_at = time.monotonic()
            replays = {w: post_ticket(t) for w, t in before.items()}
            after = {w: client.route(2, avoid=[u for o, u in urls.items() if o != w]) for w in urls}
            accepted = {w: post_ticket(t) for w, t in after.items()}
    finally:
        load.stop()
    idle_at = until("no load counted", lambda: total_load(fleet.router_url) == 0, TICKET_TTL_S + 30)
    report(
        "router SIGKILL and restart under load",
        router_up_s=up_at - killed_at,
        workers_reported_s=reported_at - killed_at,
        clients_served_s=served_at - killed_at,
        answered=load.answered,
        lost=len(load.failures),
        load_zero_s=idle_at - killed_at,
        reqnum_jump=min(after[w].reqnum - before[w].reqnum for w in urls),
    )
    assert load.failures == []
    assert all(after[w].reqnum > before[w].reqnum for w in urls), (before, after)
    assert all(status in (401, 403) for status in replays.values()), replays
    assert accepted == {"alpha": 200, "beta": 200}
