"""Running counters of a load run, cheap to update and to merge across client processes."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from client.bench.records import RequestRecord

__all__ = ["Progress"]

_RECENT = 256


@dataclass
class Progress:
    sent: int = 0
    done: int = 0
    ok: int = 0
    overloaded: int = 0
    failed: int = 0
    tokens: int = 0
    recent_ttft: deque[float] = field(default_factory=lambda: deque(maxlen=_RECENT))

    @property
    def in_flight(self) -> int:
        return self.sent - self.done

    def finished(self, record: RequestRecord) -> None:
        self.done += 1
        self.tokens += len(record.tokens)
        if record.outcome == "ok":
            self.ok += 1
            if record.ttft is not None:
                self.recent_ttft.append(record.ttft)
        elif record.outcome == "overloaded":
            self.overloaded += 1
        else:
            self.failed += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "done": self.done,
            "ok": self.ok,
            "overloaded": self.overloaded,
            "failed": self.failed,
            "tokens": self.tokens,
            "recent_ttft": list(self.recent_ttft),
        }

    @classmethod
    def merged(cls, parts: list[dict[str, Any]]) -> Progress:
        total = cls()
        for part in parts:
            for name in ("sent", "done", "ok", "overloaded", "failed", "tokens"):
                setattr(total, name, getattr(total, name) + int(part[name]))
            total.recent_ttft.extend(part["recent_ttft"])
        return total
