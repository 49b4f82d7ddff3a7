"""The start-up benchmark's figure, kept on disk, so that a worker started again serves at once.

A worker that finds a figure for the same backend, model, limits, machine and benchmark
settings (`BenchmarkKey`) takes it instead of benchmarking: the benchmark delays every start
from nothing by its warm-up and rounds (3 s for a 237 MB model on a CPU), and the figure it
would measure is the one measured last time, give or take the noise that the live measurement
(`pyworker/capacity.py`) corrects anyway. Vast's PyWorker keeps its benchmark on disk the
same way.

The file is JSON, {key: tokens/s}. Workers on one machine may share it: each write replaces
the whole file at once (a temporary file, then a rename), so a reader never sees half of one;
two writing at the same moment may lose one figure, which the next start measures again. An
unreadable file counts as empty (a benchmark then runs, and its write repairs the file).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from protocol import Info

__all__ = ["BenchmarkCache", "BenchmarkKey"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchmarkKey:
    """What a start-up figure depends on: the backend and its model (`/info`), the machine it
    runs on, and how the benchmark runs."""

    model_id: str
    model_sha: str | None
    """The revision's commit, when the backend says (TGI does)."""
    backend: str
    """The backend's `router` and `version` fields."""
    max_concurrent_requests: int
    max_input_tokens: int
    max_total_tokens: int
    machine: str
    """This machine and what decides its speed: host name, visible GPUs, threads per backend."""
    tokens: int
    concurrency: int
    repeats: int

    @classmethod
    def of(
        cls, info: Info, *, machine: str, tokens: int, concurrency: int, repeats: int
    ) -> BenchmarkKey:
        return cls(
            model_id=info.model_id,
            model_sha=info.model_sha,
            backend=f"{info.router} {info.version}",
            max_concurrent_requests=info.max_concurrent_requests,
            max_input_tokens=info.max_input_tokens,
            max_total_tokens=info.max_total_tokens,
            machine=machine,
            tokens=tokens,
            concurrency=concurrency,
            repeats=repeats,
        )

    @property
    def text(self) -> str:
        """The key as the file stores it."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


class BenchmarkCache:
    """Start-up figures in the JSON file at `path` (created on the first `put`)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def get(self, key: BenchmarkKey) -> float | None:
        """The figure kept for `key`, if any (a usable one: finite and positive)."""
        value = self._read().get(key.text)
        if isinstance(value, int | float) and math.isfinite(value) and value > 0:
            return float(value)
        return None

    def put(self, key: BenchmarkKey, perf: float) -> None:
        """Keep `perf` for `key`. A failure to write is logged, never raised: the worker serves
        anyway, and benchmarks again on its next start."""
        figures = {**self._read(), key.text: perf}
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._replace(json.dumps(figures, indent=1, sort_keys=True))
        except OSError as exc:
            log.warning("cannot keep the start-up benchmark's figure in %s: %s", self._path, exc)

    def _replace(self, text: str) -> None:
        """The file's content, replaced at once (a reader sees the old or the new, whole)."""
        with tempfile.NamedTemporaryFile(
            "w", dir=self._path.parent, prefix=f".{self._path.name}.", delete=False
        ) as temporary:
            try:
                temporary.write(text)
                temporary.close()
                os.replace(temporary.name, self._path)
            except OSError:
                Path(temporary.name).unlink(missing_ok=True)
                raise

    def _read(self) -> dict[str, object]:
        try:
            figures = json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring the unreadable benchmark cache %s: %s", self._path, exc)
            return {}
        return figures if isinstance(figures, dict) else {}
