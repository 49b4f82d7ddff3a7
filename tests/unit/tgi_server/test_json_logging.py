"""TGI-shaped JSON log lines, including the readiness line tools wait for."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from tgi_server.json_logging import SERVER_TARGET, TgiJsonFormatter, use_json_logs


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def record(message: str, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    entry = logging.LogRecord("tgi_server.server", level, "/src/server.py", 42, message, (), None)
    entry.__dict__.update(extra)
    return entry


def test_the_connected_line_names_tgis_router_target() -> None:
    line = TgiJsonFormatter().format(record("Connected", target=SERVER_TARGET))
    assert '"message":"Connected","target":"text_generation_router::server"' in line
    body = json.loads(line)
    assert list(body) == ["timestamp", "level", "message", "target", "filename", "line_number"]
    assert body["level"] == "INFO"
    assert body["timestamp"].endswith("Z")


def test_the_logger_name_is_the_default_target_and_levels_use_tracing_names() -> None:
    body = json.loads(TgiJsonFormatter().format(record("slow", logging.WARNING)))
    assert body["target"] == "tgi_server::server"
    assert body["level"] == "WARN"


@pytest.mark.usefixtures("restore_root_logger")
def test_use_json_logs_sends_every_record_to_the_stream() -> None:
    stream = io.StringIO()
    use_json_logs(stream)
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger("tgi_server.test").info("ready %d", 1, extra={"target": SERVER_TARGET})
    assert json.loads(stream.getvalue())["message"] == "ready 1"
