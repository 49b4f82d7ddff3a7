"""Bad input to `tgi-serverless bench` against a live target: exit 2, and not one request sent."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.fakes.paced_tgi import PacedTGI
from tests.ports import free_port
from tgi_serverless.cli import main


class ThreadedFake:
    """A paced fake TGI served from its own thread, for code that runs its own event loop."""

    def __init__(self) -> None:
        self.fake = PacedTGI(ttft=0.01, gap=0.005)
        self.url = f"http://127.0.0.1:{free_port()}"
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(self.fake.app())
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedFake:
        self._thread.start()
        port = int(self.url.rsplit(":", 1)[1])
        asyncio.run_coroutine_threadsafe(self._start(port), self._loop).result(10)
        return self

    async def _start(self, port: int) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="module")
def live() -> Iterator[ThreadedFake]:
    with ThreadedFake() as served:
        yield served


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "5", "--duration", "1", "--output-len", "normal:10:-3"], "--output-len"),
        (["--rate", "5", "--duration", "1", "--prompt-len", "uniform:9:2"], "--prompt-len"),
        (["--rate", "5", "--warmup", "2", "--duration", "1"], "must be shorter"),
        (["--scenario", "step", "--steps", "5:1,0:1,x"], "RATE:SECONDS"),
        (["--rate", "5", "--dataset", "BAD_JSONL"], "bad.jsonl:2 is not JSON"),
        (["--rate", "5", "--dataset", "EMPTY"], "no prompts"),
    ],
)
def test_bad_input_exits_2_and_sends_nothing(
    live: ThreadedFake,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    files = {
        "BAD_JSONL": write(tmp_path / "bad.jsonl", '{"prompt": "ok"}\n{"prompt": \n'),
        "EMPTY": write(tmp_path / "empty.jsonl", ""),
    }
    args = [str(files[a]) if a in files else a for a in args]
    out = tmp_path / "out"
    code = main(["bench", "--target", "backend", "--url", live.url, "--no-live",
                 "--output-dir", str(out), *args])  # fmt: skip
    assert code == 2
    assert message in capsys.readouterr().err
    assert live.fake.requests == 0
    assert not out.exists()


def test_good_input_does_reach_the_fake(tmp_path: Path) -> None:
    """The check above can fail: a valid run against such a fake is seen by it."""
    with ThreadedFake() as served:
        args = ["--rate", "5", "--duration", "1", "--output-len", "3"]
        code = main(["bench", "--target", "backend", "--url", served.url, "--no-live",
                     "--output-dir", str(tmp_path / "ok"), *args])  # fmt: skip
        assert code == 0
        assert served.fake.requests >= 1
