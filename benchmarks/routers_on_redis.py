"""Routers on Redis: POST /route/ per second with one and two routers sharing one Redis, as
ratios against one in-memory router measured in the same run.

It starts a redis-server (Debian's package) on a free port in a temp dir and, for each setup in
turn, router processes (`tgi-serverless router`, with `--state redis://...` for the Redis
ones), registers `--workers` ready workers by status reports to the first router (the second
learns of them through Redis), and drives every router of the setup at once with `wrk` (one
thread, `--connections` each) for `--duration` seconds. The figure of a setup is the sum over
its routers; the setups take turns, `--rounds` times, and the best round of each counts.

On a machine with few cores the routers, Redis and wrk share them: two routers cannot show
twice the throughput of one when there is no second core for them. The figures say what one
router loses to Redis (its flushes, its reqnum blocks), and what a second router adds here.

Usage (from the repository root, with the venv the project is installed in; needs wrk and
redis-server):
  .venv/bin/python benchmarks/routers_on_redis.py [--workers 100] [--duration 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

API_KEY = "bench-api-key"
SECRET = "bench-state-secret-of-32-characters"
ROUTE_BODY = json.dumps({"endpoint": "default", "cost": 100})
WRK_SCRIPT = f"""
wrk.method = "POST"
wrk.body = '{ROUTE_BODY}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {API_KEY}"
"""
SETUPS = {"memory x1": (1, False), "redis x1": (1, True), "redis x2": (2, True)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "no", "--dir", str(directory)]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(15)


@contextlib.contextmanager
def routers(count: int, redis_url: str | None, directory: Path) -> Iterator[list[str]]:
    env = {
        **os.environ,
        "TGIS_ADMIN_KEY": "bench-admin-key",
        "TGIS_ALLOW_ANONYMOUS_WORKERS": "true",
        "TGIS_ALLOW_PRIVATE_WORKERS": "true",
        "TGIS_WORKER_STALE_S": "3600",
    }
    if redis_url is not None:
        env |= {"TGIS_STATE_URL": redis_url, "TGIS_STATE_SECRET": SECRET}
    processes, urls = [], []
    try:
        for index in range(count):
            port = free_port()
            state = directory / f"router{index}"
            args = ["router", "--port", str(port), "--api-key", API_KEY, "--state-dir", str(state)]
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tgi_serverless", *args],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            wait_healthy(url, process)
        yield urls
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(30)


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the router at {url} exited during start-up")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the router at {url} did not start within 60 s")


def register(url: str, workers: int) -> None:
    for index in range(workers):
        body = {
            "id": f"bench-{index}",
            "url": f"http://10.0.{index // 250}.{index % 250 + 1}:3000",
            "state": "ready",
            "max_perf": 1000.0,
        }
        request = urllib.request.Request(
            f"{url}/worker_status/",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()


def until_routes(urls: Sequence[str]) -> None:
    """Every router routes (the second one once a flush brought it the workers)."""
    deadline = time.monotonic() + 30
    for url in urls:
        while True:
            request = urllib.request.Request(
                f"{url}/route/",
                data=ROUTE_BODY.encode(),
                method="POST",
                headers={"Authorization": f"Bearer {API_KEY}"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                if "reqnum" in json.loads(response.read()):
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} never routed")
            time.sleep(0.2)


def drive(urls: Sequence[str], duration_s: int, connections: int) -> tuple[float, int]:
    """Routes per second over all `urls` at once (one wrk each), and the non-2xx count."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    try:
        runs = [
            subprocess.Popen(
                ["wrk", "-t1", f"-c{connections}", f"-d{duration_s}s", "-s", script.name,
                 f"{url}/route/"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for url in urls
        ]  # fmt: skip
        outputs = [run.communicate(timeout=duration_s + 60)[0] for run in runs]
    finally:
        os.unlink(script.name)
    rate, errors = 0.0, 0
    for out in outputs:
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if match is None:
            raise SystemExit(f"wrk gave no figure:\n{out}")
        rate += float(match.group(1))
        non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        errors += int(non_2xx.group(1)) if non_2xx else 0
    return rate, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=100, help="ready workers registered")
    parser.add_argument("--duration", type=int, default=5, help="seconds per round (whole)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections per router")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per setup; the best counts")
    args = parser.parse_args()
    missing = [tool for tool in ("wrk", "redis-server") if shutil.which(tool) is None]
    if missing:
        print(f"needs {' and '.join(missing)} (apt-get install wrk redis-server)", file=sys.stderr)
        return 2
    best: dict[str, tuple[float, int]] = {}
    with tempfile.TemporaryDirectory() as temp, contextlib.ExitStack() as stack:
        directory = Path(temp)
        started = {}
        for name, (count, shared) in SETUPS.items():
            slug = name.replace(" ", "-")
            url = None
            if shared:
                (directory / f"redis-{slug}").mkdir()
                url = stack.enter_context(redis_server(directory / f"redis-{slug}"))
            started[name] = urls = stack.enter_context(routers(count, url, directory / slug))
            register(urls[0], args.workers)
            until_routes(urls)
        for _ in range(args.rounds):  # the setups in turn, so the machine's noise hits each
            for name, urls in started.items():
                rate, errors = drive(urls, args.duration, args.connections)
                if rate > best.get(name, (0.0, 0))[0]:
                    best[name] = (rate, errors)
    base = best["memory x1"][0]
    print(f"cores: {os.cpu_count()}; workers: {args.workers}; best of {args.rounds} x "
          f"{args.duration} s; wrk -c{args.connections} per router")  # fmt: skip
    for name, (rate, errors) in best.items():
        print(f"{name:10s} {rate:9.0f} routes/s  x{rate / base:.2f}  non-2xx {errors}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
