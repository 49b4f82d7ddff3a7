"""Reading a request trace file for the simulator; the CSV layouts are `common.trace`'s.

`time_scale` multiplies every arrival time: 0.5 replays twice as fast (twice the load).
"""

from __future__ import annotations

from pathlib import Path

from common.trace import Trace, TraceError, parse_trace

__all__ = ["load_trace"]


def load_trace(path: Path, *, time_scale: float = 1.0) -> Trace:
    """The trace at `path`, its times scaled, or TraceError saying what is wrong and where."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TraceError(f"cannot read the trace {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise TraceError(f"the trace {path} is not UTF-8 text") from None
    return parse_trace(text, str(path)).scaled(time_scale)
