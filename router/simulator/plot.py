"""A picture of a simulation, as a standalone SVG: two charts over the same time axis.

Top: the offered load (tokens/s per tick), with the requests waiting at the router with no room
on a right-hand axis. Bottom: workers (desired, active, ready, and the cold pool). Each chart
has labelled axes with gridlines, so values can be read off; the headline carries the figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from common.svg import Chart, Series, document
from router.simulator.results import SimResult, TimelinePoint

__all__ = ["render_svg", "write_plot"]

WIDTH, CHART_HEIGHT = 1000, 280
MAX_POINTS = 1000

Reading = tuple[str, str, Callable[[TimelinePoint], float]]
"""A series' name, its colour, and its value at a point of the timeline."""

LOAD: Reading = ("load, tokens/s", "#7f7f7f", lambda p: p.load_tokens_per_s)
WAITING: Reading = ("waiting at the router (right axis)", "#d62728", lambda p: float(p.waiting))
WORKERS: tuple[Reading, ...] = (
    ("desired", "#ff7f0e", lambda p: float(p.desired)),
    ("active", "#1f77b4", lambda p: float(p.active)),
    ("ready", "#2ca02c", lambda p: float(p.ready)),
    ("cold pool", "#9467bd", lambda p: float(p.cold)),
)


def write_plot(path: Path, result: SimResult) -> None:
    path.write_text(render_svg(result), encoding="utf-8")


def render_svg(result: SimResult) -> str:
    step = max(1, math.ceil(len(result.timeline) / MAX_POINTS))
    points = result.timeline[::step]
    span = (0.0, max((p.t for p in points), default=0.0) or 1.0)
    headline = (
        f"{result.trace} / {result.policy}: SLO {result.slo_attainment:.2%} "
        f"(queue <= {result.target_queue_time_s:g} s), {result.worker_seconds:.0f} worker-s, "
        f"p99 queue {result.p99_queue_time_s:.1f} s, {result.cold_starts} cold starts, "
        f"{result.resumes} resumes"
    )
    load = Chart(
        "Offered load and requests waiting at the router",
        [_series(points, LOAD), _series(points, WAITING, right=True)],
        "time, s",
        "tokens/s",
        right_label="requests waiting",
        x_range=span,
        integer_y=True,
        width=WIDTH,
        height=CHART_HEIGHT,
    )
    workers = Chart(
        "Workers",
        [_series(points, reading) for reading in WORKERS],
        "time, s",
        "workers",
        x_range=span,
        integer_y=True,
        width=WIDTH,
        height=CHART_HEIGHT,
    )
    return document(headline, [load, workers])


def _series(points: Sequence[TimelinePoint], reading: Reading, *, right: bool = False) -> Series:
    name, colour, value = reading
    return Series(name, [(p.t, value(p)) for p in points], colour=colour, right=right)
