"""The SSE framer both relays cut streams with, on a long event that arrives in small pieces.

    .venv/bin/python -m benchmarks.bench_framer [--event-kib 512] [--chunk 256]

Anchor: the same event fed to `EventFramer` in one chunk (one search, one copy). Measured: the
event fed in `--chunk`-byte pieces, as a slow or hostile upstream sends it. The ratio is what the
pieces cost over the floor; it should stay flat as the event grows (linear work), where a
framer that searched or copied everything it held for each piece would grow with the length.
"""

from __future__ import annotations

import argparse
import time

from protocol.relay import EventFramer


def seconds_to_frame(event: bytes, chunk: int) -> float:
    framer = EventFramer()
    started = time.perf_counter()
    passed = sum(len(framer.feed(event[at : at + chunk])) for at in range(0, len(event), chunk))
    elapsed = time.perf_counter() - started
    assert passed == len(event), "the framer lost bytes"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--event-kib", type=int, default=512)
    parser.add_argument("--chunk", type=int, default=256)
    args = parser.parse_args()
    for kib in (args.event_kib // 4, args.event_kib):
        event = b"data:" + b"x" * (kib * 1024 - 7) + b"\n\n"
        anchor = min(seconds_to_frame(event, len(event)) for _ in range(5))
        measured = min(seconds_to_frame(event, args.chunk) for _ in range(3))
        print(
            f"{kib:>5} KiB event in {args.chunk}-byte pieces: {measured * 1e3:8.1f} ms, "
            f"one piece {anchor * 1e3:6.2f} ms, ratio {measured / anchor:7.1f}x"
        )


if __name__ == "__main__":
    main()
