"""The stack's processes: their names, and the sampler on real processes (this one and a
child)."""

from __future__ import annotations

import subprocess
import sys
import time

from soak.processes import ProcessSampler, process_names, worker_urls

PYTHON = ["/venv/bin/python", "-m", "tgi_serverless", "--log-level", "INFO"]
BACKEND_1 = [*PYTHON, "backend", "--port", "5101"]
BACKEND_2 = [*PYTHON, "backend", "--port", "5102", "--model-id", "worker"]
PYWORKER_2 = [*PYTHON, "worker", "--port", "6102", "--backend-url", "http://127.0.0.1:5102",
              "--worker-id", "worker-2"]  # fmt: skip
PYWORKER_1 = [*PYTHON, "worker", "--port", "6101", "--backend-url", "http://127.0.0.1:5101",
              "--worker-id", "worker-1"]  # fmt: skip


def test_each_process_is_named_by_its_role_and_worker() -> None:
    commands = {
        10: [*PYTHON, "up", "--workers", "2"],
        11: BACKEND_1,
        12: PYWORKER_1,
        13: BACKEND_2,
        14: PYWORKER_2,
        15: ["/bin/sh", "-c", "true"],
        16: [],
        17: ["/venv/bin/python", "-m", "tgi_server.engine.shard", "7"],
        18: ["/venv/bin/python", "-m", "tgi_server.engine.shard", "7"],
    }
    parents = {11: 10, 12: 10, 13: 10, 14: 10, 15: 12, 16: 999, 17: 13, 18: 12}
    assert process_names(10, commands, parents) == {
        10: "router [10]",
        11: "worker-1 backend [11]",
        12: "worker-1 pyworker [12]",
        13: "worker-2 backend [13]",
        14: "worker-2 pyworker [14]",
        15: "worker-1 pyworker child sh [15]",
        16: "process child ? [16]",
        17: "worker-2 shard [17]",
        18: "worker-1 pyworker child tgi_server.engine.shard [18]",
    }


def test_a_backend_without_its_pyworker_is_named_unknown() -> None:
    assert process_names(1, {2: BACKEND_1}, {2: 1}) == {2: "unknown backend [2]"}


def test_the_sampler_reads_memory_and_descriptors_of_the_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        sampler = ProcessSampler(child.pid, interval_s=0.05)
        at_rest = sampler.snapshot()
        sampler.start(time.monotonic())
        deadline = time.monotonic() + 20
        while len(sampler.samples.get(f"router [{child.pid}]", [])) < 3:
            assert time.monotonic() < deadline, sampler.samples
            time.sleep(0.05)
        sampler.stop()
    finally:
        child.kill()
        child.wait()
    samples = sampler.samples[f"router [{child.pid}]"]
    assert all(s.rss_bytes > 2**20 and s.fds >= 3 for s in samples)
    assert [s.t for s in samples] == sorted(s.t for s in samples)
    assert list(sampler.latest()) == [f"router [{child.pid}]"]
    assert list(at_rest) == [f"router [{child.pid}]"]
    assert len(sampler.machine_load) >= 3
    count = len(samples)
    sampler.sample_once()  # the process is gone: nothing sampled, nothing raised
    assert len(sampler.samples[f"router [{child.pid}]"]) == count
    assert sampler.snapshot() == {}


def test_forked_backends_and_their_shards_are_named_by_their_titles() -> None:
    """`up`'s fork server forks backends, which show one title; their shards share it and
    are known by their process name."""
    title = "tgi-serverless --log-level INFO backend --port 5101"
    commands = {
        10: [*PYTHON, "up", "--workers", "1"],
        11: ["/venv/bin/python", "-m", "tgi_serverless.fork_server", "7"],
        12: [title, "", "", ""],
        13: [title, "", ""],
        14: PYWORKER_1,
    }
    parents = {11: 10, 12: 11, 13: 12, 14: 10}
    assert process_names(10, commands, parents, shards=[13]) == {
        10: "router [10]",
        11: "fork server [11]",
        12: "worker-1 backend [12]",
        13: "worker-1 shard [13]",
        14: "worker-1 pyworker [14]",
    }


def test_each_workers_url_comes_from_its_pyworkers_command_line() -> None:
    title = "tgi-serverless --log-level INFO backend --port 5101"
    commands = [
        [*PYWORKER_1, "--public-url", "http://127.0.0.1:6101"],
        [*PYWORKER_2, "--public-url", "http://127.0.0.1:6102"],
        [title, "", ""],
        [*PYTHON, "worker", "--worker-id", "worker-3"],  # no URL: not named
    ]
    assert worker_urls(commands) == {
        "worker-1": "http://127.0.0.1:6101",
        "worker-2": "http://127.0.0.1:6102",
    }
