"""Log lines in TGI's JSON shape (`--json-output`), for tools that parse TGI's logs.

TGI writes one JSON object per line: timestamp, level, message, target, filename, line number.
Tools watch for particular lines; Vast.ai's PyWorker, for example, waits for
`"message":"Connected","target":"text_generation_router::server"`. A log call can name the
TGI target it stands for with `extra={"target": ...}`; otherwise the logger's name is used.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

__all__ = ["LAUNCHER_TARGET", "SERVER_TARGET", "TgiJsonFormatter", "use_json_logs"]

SERVER_TARGET = "text_generation_router::server"
LAUNCHER_TARGET = "text_generation_launcher"

_LEVELS = {"WARNING": "WARN", "CRITICAL": "ERROR"}


class TgiJsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        timestamp = datetime.fromtimestamp(record.created, tz=UTC)
        body = {
            "timestamp": timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": _LEVELS.get(record.levelname, record.levelname),
            "message": message,
            "target": getattr(record, "target", record.name.replace(".", "::")),
            "filename": record.pathname,
            "line_number": record.lineno,
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def use_json_logs(stream: TextIO | None = None) -> None:
    """Send every log record to `stream` (default stdout, as TGI) as one JSON line."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(TgiJsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
