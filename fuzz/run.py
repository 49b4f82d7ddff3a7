"""Fuzz one target with atheris (libFuzzer) for a while.

    python -m fuzz NAME [--seconds 300] [--corpus DIR] [--artifacts DIR]

NAME is one of `TARGETS`. The inputs that reach new code are kept in the corpus directory
(default `.fuzz-corpus/NAME`, not tracked), which starts from the target's seeds
(`fuzz/seeds/NAME`); an input that breaks the target's contract is written to the artifacts
directory (default `fuzz/regressions/NAME`, tracked: tests/unit/fuzz replays every file there)
and ends the run with a non-zero status. libFuzzer's final statistics (runs, execs/s) close
the output.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FUZZ_DIR", "TARGETS", "Target", "main"]

FUZZ_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Target:
    module: str
    """The module whose `check(data: bytes)` is fuzzed."""
    instrumented: tuple[str, ...]
    """The packages whose coverage guides the fuzzer (only ours: the libraries under them
    would slow every run and steer the fuzzer into their own branches)."""

    def load(self) -> Callable[[bytes], None]:
        check: Callable[[bytes], None] = importlib.import_module(self.module).check
        return check

    def seeds(self, name: str) -> Path:
        return FUZZ_DIR / "seeds" / name

    def regressions(self, name: str) -> Path:
        return FUZZ_DIR / "regressions" / name


TARGETS = {
    "tickets": Target("fuzz.target_tickets", ("protocol", "pyworker.tickets")),
    "payloads": Target(
        "fuzz.target_payloads",
        ("protocol", "pyworker.envelope", "tgi_server.validation", "tgi_server.http.bodies"),
    ),
    "sse": Target("fuzz.target_sse", ("protocol.relay", "protocol.sse")),
    "vast": Target("fuzz.target_vast", ("protocol.vast_tickets", "router.vast")),
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--seconds", type=int, default=300, help="how long to fuzz")
    parser.add_argument("--corpus", type=Path, help="where new inputs go")
    parser.add_argument("--artifacts", type=Path, help="where crashing inputs go")
    args = parser.parse_args(argv)
    target = TARGETS[args.target]
    corpus = args.corpus or Path(".fuzz-corpus") / args.target
    artifacts = args.artifacts or target.regressions(args.target)
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)

    import atheris

    with atheris.instrument_imports(include=list(target.instrumented)):
        check = target.load()
    libfuzzer_args = [
        sys.argv[0],
        f"-max_total_time={args.seconds}",
        f"-artifact_prefix={artifacts}/",
        "-timeout=10",  # an input that takes this long is a finding (a hang)
        "-rss_limit_mb=2048",
        "-max_len=4096",
        "-print_final_stats=1",
        f"-dict={FUZZ_DIR / 'json.dict'}",
        str(corpus),
        str(target.seeds(args.target)),
    ]
    atheris.Setup(libfuzzer_args, check)
    atheris.Fuzz()
