"""A picture of a simulation, as a standalone SVG: two panels over the same time axis.

Top: the offered load (tokens/s per tick) and the requests waiting at the router with no room.
Bottom: workers (desired, active, ready, and the cold pool). Each panel has its own labelled
axis with gridlines, so values can be read off; the title carries the headline figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from router.simulator.results import SimResult, TimelinePoint

__all__ = ["render_svg", "write_plot"]

WIDTH, HEIGHT = 1000, 560
LEFT, RIGHT, TOP = 70, 20, 50
PANEL_H, GAP = 200, 60
MAX_POINTS = 1000

Series = tuple[str, str, Callable[[TimelinePoint], float]]

LOAD: tuple[Series, ...] = (("load, tokens/s", "#7f7f7f", lambda p: p.load_tokens_per_s),)
WAITING: Series = ("waiting at the router (right axis)", "#d62728", lambda p: float(p.waiting))
WORKERS: tuple[Series, ...] = (
    ("desired", "#ff7f0e", lambda p: float(p.desired)),
    ("active", "#1f77b4", lambda p: float(p.active)),
    ("ready", "#2ca02c", lambda p: float(p.ready)),
    ("cold pool", "#9467bd", lambda p: float(p.cold)),
)


@dataclass(frozen=True)
class _Panel:
    top: float
    span_s: float
    peak: float

    def x(self, t: float) -> float:
        return LEFT + t / self.span_s * (WIDTH - LEFT - RIGHT)

    def y(self, value: float, peak: float | None = None) -> float:
        return self.top + PANEL_H * (1 - value / (peak or self.peak))


def write_plot(path: Path, result: SimResult) -> None:
    path.write_text(render_svg(result), encoding="utf-8")


def render_svg(result: SimResult) -> str:
    step = max(1, math.ceil(len(result.timeline) / MAX_POINTS))
    points = result.timeline[::step]
    span = max((p.t for p in points), default=0.0) or 1.0
    load = _Panel(TOP, span, _nice(max((p.load_tokens_per_s for p in points), default=0.0)))
    workers = _Panel(
        TOP + PANEL_H + GAP,
        span,
        _nice(max((max(p.desired, p.active, p.cold) for p in points), default=0)),
    )
    waiting_peak = _nice(max((p.waiting for p in points), default=0))
    title = escape(
        f"{result.trace} / {result.policy}: SLO {result.slo_attainment:.2%} "
        f"(queue <= {result.target_queue_time_s:g} s), {result.worker_seconds:.0f} worker-s, "
        f"p99 queue {result.p99_queue_time_s:.1f} s, {result.cold_starts} cold starts, "
        f"{result.resumes} resumes"
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{LEFT}" y="20" font-size="14">{title}</text>',
        *_axes(load, "tokens/s"),
        *_right_axis(load, waiting_peak),
        *_axes(workers, "workers"),
        *_time_axis(workers),
        *[_line(points, load, s) for s in LOAD],
        _line(points, load, WAITING, waiting_peak),
        *[_line(points, workers, s) for s in WORKERS],
        *_legend((*LOAD, WAITING), load.top - 8),
        *_legend(WORKERS, workers.top - 8),
        "</svg>",
    ]
    return "\n".join(parts)


def _nice(value: float) -> float:
    """A round upper bound for an axis: 1, 2 or 5 times a power of ten, at least `value`."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(float(m * power) for m in (1, 2, 5, 10) if m * power >= value)


def _label(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:g}"


def _axes(panel: _Panel, unit: str) -> list[str]:
    right = WIDTH - RIGHT
    parts = [
        f'<text x="12" y="{panel.top + PANEL_H / 2:.0f}" transform="rotate(-90 12 '
        f'{panel.top + PANEL_H / 2:.0f})" text-anchor="middle">{unit}</text>'
    ]
    for i in range(5):
        value = panel.peak * i / 4
        y = panel.y(value)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(value)}</text>'
        )
    parts.append(
        f'<rect x="{LEFT}" y="{panel.top}" width="{right - LEFT}" height="{PANEL_H}" '
        'fill="none" stroke="#999999"/>'
    )
    return parts


def _right_axis(panel: _Panel, peak: float) -> list[str]:
    x = WIDTH - RIGHT + 4
    return [
        f'<text x="{x}" y="{panel.y(value, peak) + 4:.1f}" fill="#d62728" font-size="10">'
        f"{_label(value)}</text>"
        for value in (0.0, peak / 2, peak)
    ]


def _time_axis(panel: _Panel) -> list[str]:
    tick = _nice(panel.span_s / 10)
    bottom = panel.top + PANEL_H
    parts = [
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2:.0f}" y="{bottom + 36:.0f}" '
        'text-anchor="middle">time, s</text>'
    ]
    t = 0.0
    while t <= panel.span_s + 1e-9:
        x = panel.x(t)
        parts.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 5}" stroke="#999999"/>'
        )
        parts.append(f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{_label(t)}</text>')
        t += tick
    return parts


def _line(
    points: Sequence[TimelinePoint], panel: _Panel, series: Series, peak: float | None = None
) -> str:
    _, colour, value = series
    coords = " ".join(f"{panel.x(p.t):.1f},{panel.y(value(p), peak):.1f}" for p in points)
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.3" points="{coords}"/>'


def _legend(series: Sequence[Series], y: float) -> list[str]:
    parts, x = [], float(LEFT)
    for name, colour, _ in series:
        parts.append(
            f'<line x1="{x:.0f}" y1="{y - 4:.0f}" x2="{x + 18:.0f}" y2="{y - 4:.0f}" '
            f'stroke="{colour}" stroke-width="3"/>'
        )
        parts.append(f'<text x="{x + 24:.0f}" y="{y:.0f}">{escape(name)}</text>')
        x += 34 + 7 * len(name)
    return parts
