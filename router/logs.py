"""Structured log lines: `event key=value ...`, one per thing that happened, never a secret.

Callers pass only what is safe to show (names, ids, URLs, numbers): API keys, admin keys and
worker tokens are never handed to `event`, so no log line can carry one.
"""

from __future__ import annotations

import logging

__all__ = ["event"]


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: object) -> None:
    if not logger.isEnabledFor(level):
        return
    parts = [name, *(f"{key}={_value(value)}" for key, value in fields.items())]
    logger.log(level, " ".join(parts))


def _value(value: object) -> str:
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text
