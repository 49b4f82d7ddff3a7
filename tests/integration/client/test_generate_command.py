"""`tgi-serverless generate` end to end: run() against the fake router and worker.

run() blocks (it runs its own event loop), so it runs in a thread while the fakes serve here.
"""

from __future__ import annotations

import argparse
import asyncio

import pytest

from client import generate_command
from tests.integration.client import fakes
from tests.ports import free_port


@pytest.fixture(autouse=True)
def _ticket_at_once(router: fakes.FakeRouter, monkeypatch: pytest.MonkeyPatch) -> None:
    router.waits = 0  # the command polls on the real 1 s schedule
    monkeypatch.delenv("TGIS_API_KEY", raising=False)


async def run_command(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="tgi-serverless generate")
    generate_command.add_arguments(parser)
    args = parser.parse_args(list(argv))
    return await asyncio.to_thread(generate_command.run, args)


async def test_it_prints_the_generated_text(
    router: fakes.FakeRouter, worker: fakes.FakeWorker, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_command("Hi", "--router", router.url, "--api-key", fakes.API_KEY)

    captured = capsys.readouterr()
    assert (code, captured.out, captured.err) == (0, fakes.GENERATED_TEXT + "\n", "")
    assert worker.seen[0].body["payload"] == {
        "inputs": "Hi",
        "parameters": {"max_new_tokens": 100},
    }


async def test_details_go_to_stderr_so_stdout_stays_the_text(
    router: fakes.FakeRouter, worker: fakes.FakeWorker, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--router", router.url, "--api-key", fakes.API_KEY, "--details"]
    assert await run_command("Hi", *argv) == 0

    captured = capsys.readouterr()
    assert captured.out == fakes.GENERATED_TEXT + "\n"
    assert captured.err == f"finish_reason=length generated_tokens={len(fakes.WORDS)} seed=None\n"
    assert worker.seen[0].body["payload"]["parameters"]["details"] is True


async def test_the_api_key_comes_from_the_environment(
    router: fakes.FakeRouter, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TGIS_API_KEY", fakes.API_KEY)
    assert await run_command("Hi", "--router", router.url) == 0
    assert router.seen[0].headers["Authorization"] == f"Bearer {fakes.API_KEY}"
    assert capsys.readouterr().out == fakes.GENERATED_TEXT + "\n"


async def test_stream_prints_tokens_and_options_reach_the_worker(
    router: fakes.FakeRouter, worker: fakes.FakeWorker, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "--router",
        router.url,
        "--api-key",
        fakes.API_KEY,
        "--stream",
        "--max-new-tokens",
        "20",
    ]
    argv += ["--temperature", "0.7", "--seed", "3", "--details"]
    code = await run_command("Hi", *argv)

    captured = capsys.readouterr()
    assert code == 0
    assert captured.out == fakes.GENERATED_TEXT + "\n"
    assert captured.err == f"finish_reason=length generated_tokens={len(fakes.WORDS)} seed=42\n"
    assert worker.seen[0].path == "/generate_stream"
    assert worker.seen[0].body["payload"]["parameters"] == {
        "max_new_tokens": 20,
        "temperature": 0.7,
        "seed": 3,
        "details": True,
    }
    assert router.seen[0].body["cost"] == 20


async def test_a_wrong_key_is_one_line_saying_what_to_change(
    router: fakes.FakeRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await run_command("Hi", "--router", router.url, "--api-key", "wrong")

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("error: router 401")
    assert "--api-key" in captured.err
    assert "Traceback" not in captured.err


async def test_an_unknown_endpoint_names_the_flag(
    router: fakes.FakeRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--router", router.url, "--api-key", fakes.API_KEY, "--endpoint", "llama"]
    assert await run_command("Hi", *argv) == 1
    assert "--endpoint" in capsys.readouterr().err


async def test_an_unreachable_router_suggests_starting_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert await run_command("Hi", "--router", url, "--api-key", fakes.API_KEY) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "tgi-serverless up" in err
    assert url in err


async def test_a_stream_failing_midway_ends_the_line_then_reports(
    router: fakes.FakeRouter, worker: fakes.FakeWorker, capsys: pytest.CaptureFixture[str]
) -> None:
    worker.stream = [
        *fakes.stream_events(2),
        b'data: {"error":"oom","error_type":"generation"}\n\n',
    ]
    code = await run_command("Hi", "--router", router.url, "--api-key", fakes.API_KEY, "--stream")

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == "".join(fakes.WORDS[:2]) + "\n"
    assert captured.err == "error: worker (generation): oom\n"


async def test_a_busy_worker_says_when_to_retry(
    router: fakes.FakeRouter, worker: fakes.FakeWorker, capsys: pytest.CaptureFixture[str]
) -> None:
    # The CLI honours Retry-After between its retries: 1 s keeps the test at four seconds.
    worker.reject = fakes.Scripted.error(429, "queue full", "overloaded", **{"Retry-After": "1"})
    assert await run_command("Hi", "--router", router.url, "--api-key", fakes.API_KEY) == 1
    assert "try again in 1 s" in capsys.readouterr().err
