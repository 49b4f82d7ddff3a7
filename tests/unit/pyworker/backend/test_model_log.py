from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyworker.backend.model_log import LogFollower, LogSignal, classify_line
from tests.fakes.fake_tgi import CONNECTED_LINE as CONNECTED

CONNECTED_OLD = '{"level":"INFO","message":"Connected","target":"text_generation_router"}'
SHARD_FAILED = "Error: ShardCannotStart"
DOWNLOAD_FAILED = '{"level":"ERROR","message":"Error: DownloadError","target":"launcher"}'


@pytest.mark.parametrize("line", [CONNECTED, CONNECTED_OLD, CONNECTED + "\n"])
def test_the_routers_connected_line_means_loaded(line: str) -> None:
    event = classify_line(line)
    assert event is not None
    assert event.signal is LogSignal.LOADED


def test_a_connected_record_with_nested_fields_means_loaded() -> None:
    line = json.dumps(
        {"fields": {"message": "Connected"}, "target": "text_generation_router::server"}
    )
    event = classify_line(line)
    assert event is not None
    assert event.signal is LogSignal.LOADED


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (SHARD_FAILED, "Error: ShardCannotStart"),
        (DOWNLOAD_FAILED, "Error: DownloadError"),
        ("2026 ERROR Error: WebserverFailed (port in use)", "Error: WebserverFailed (port in use)"),
    ],
)
def test_launcher_errors_mean_failed_with_their_message(line: str, message: str) -> None:
    event = classify_line(line)
    assert event is not None
    assert event.signal is LogSignal.FAILED
    assert message in event.message


@pytest.mark.parametrize(
    "line",
    [
        '{"message":"Connected","target":"somebody_else"}',
        '{"message":"Download file: model.safetensors","target":"text_generation_launcher"}',
        "Connected",
        "{not json Connected",
        "[]",
    ],
)
def test_other_lines_mean_nothing(line: str) -> None:
    assert classify_line(line) is None


@given(st.text(max_size=300))
def test_any_line_classifies_without_raising(line: str) -> None:
    classify_line(line)


async def follow(
    path: Path, count: int, max_line_bytes: int = 64 * 1024
) -> asyncio.Task[list[str]]:
    """A task that reads the next `count` lines of `path` (within 10 s) with a follower that
    polls every 10 ms; returned once the follower has had 0.1 s to open the file."""

    async def collect() -> list[str]:
        out: list[str] = []
        async with asyncio.timeout(10):
            async for line in LogFollower(path, poll_s=0.01, max_line_bytes=max_line_bytes).lines():
                out.append(line)
                if len(out) == count:
                    break
        return out

    reader = asyncio.create_task(collect())
    await asyncio.sleep(0.1)
    return reader


def append(path: Path, text: str) -> None:
    with path.open("a") as handle:
        handle.write(text)


async def test_an_existing_log_is_followed_from_its_end(tmp_path: Path) -> None:
    path = tmp_path / "infer.log"
    path.write_text(f"{CONNECTED}\n{SHARD_FAILED}\n")  # a previous run's lines
    reader = await follow(path, 1)
    await asyncio.sleep(0.1)
    append(path, "new line\n")
    assert await reader == ["new line"]


async def test_a_log_that_appears_later_is_read_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "infer.log"
    reader = await follow(path, 2)
    path.write_text("first\nsecond\n")
    assert await reader == ["first", "second"]


async def test_rotation_and_truncation_start_over(tmp_path: Path) -> None:
    path = tmp_path / "infer.log"
    path.write_text("old\n")
    reader = await follow(path, 3)
    append(path, "a\n")
    await asyncio.sleep(0.1)
    os.rename(path, tmp_path / "infer.log.old")  # rotated: a new file takes the name
    path.write_text("bbbbbbbb\n")
    await asyncio.sleep(0.2)
    path.write_text("")  # truncated in place (shorter than what was read, even once appended)
    await asyncio.sleep(0.1)
    append(path, "c\n")
    assert await reader == ["a", "bbbbbbbb", "c"]


async def test_a_partial_line_waits_for_its_end(tmp_path: Path) -> None:
    path = tmp_path / "infer.log"
    path.write_text("")
    reader = await follow(path, 1)
    append(path, '{"message":"Conn')
    await asyncio.sleep(0.1)
    assert not reader.done()
    append(path, 'ected"}\n')
    assert await reader == ['{"message":"Connected"}']


async def test_an_endless_line_is_cut_not_buffered_forever(tmp_path: Path) -> None:
    path = tmp_path / "infer.log"
    path.write_text("")
    reader = await follow(path, 1, max_line_bytes=100)
    append(path, "x" * 1000)
    [line] = await reader
    assert 100 <= len(line) <= 1000
