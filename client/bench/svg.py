"""Small self-drawn SVG line charts (no scripts, no external files), for the HTML report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Series", "line_chart"]

WIDTH, HEIGHT = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 44
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    step: bool = False


def line_chart(title: str, series: Sequence[Series], x_label: str, y_label: str) -> str:
    drawn = [s for s in series if s.points]
    if not drawn:
        return f"<figure><figcaption>{escape(title)}</figcaption><p>no data</p></figure>"
    xs = [x for s in drawn for x, _ in s.points]
    ys = [y for s in drawn for _, y in s.points]
    x0, x1 = _span(min(xs), max(xs))
    top = max(ys)
    y0, y1 = _span(min(0.0, min(ys)), top * 1.2 if top > 0 else top)  # room for the legend
    scale = _Scale(x0, x1, y0, y1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="14">{escape(title)}</text>',
        *_axes(scale, x_label, y_label),
        *(_path(s, scale, COLOURS[i % len(COLOURS)]) for i, s in enumerate(drawn)),
        *_legend(drawn),
        "</svg>",
    ]
    return "<figure>" + "".join(parts) + "</figure>"


@dataclass(frozen=True)
class _Scale:
    x0: float
    x1: float
    y0: float
    y1: float

    def x(self, value: float) -> float:
        return LEFT + (value - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return HEIGHT - BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)


def _span(low: float, high: float) -> tuple[float, float]:
    if not (math.isfinite(low) and math.isfinite(high)):
        return 0.0, 1.0
    if high - low < 1e-12:
        return low - 0.5, high + 0.5
    return low, high


def _axes(scale: _Scale, x_label: str, y_label: str) -> list[str]:
    bottom, left = HEIGHT - BOTTOM, LEFT
    parts = [
        f'<line x1="{left}" y1="{TOP}" x2="{left}" y2="{bottom}" stroke="#333"/>',
        f'<line x1="{left}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="#333"/>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" text-anchor="middle" font-size="12">'
        f"{escape(x_label)}</text>",
        f'<text x="14" y="{HEIGHT / 2}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {HEIGHT / 2})">{escape(y_label)}</text>',
    ]
    for i in range(5):
        xv = scale.x0 + (scale.x1 - scale.x0) * i / 4
        yv = scale.y0 + (scale.y1 - scale.y0) * i / 4
        px, py = scale.x(xv), scale.y(yv)
        parts.append(
            f'<text x="{px:.1f}" y="{bottom + 16}" text-anchor="middle" font-size="10">'
            f"{_tick(xv)}</text>"
        )
        parts.append(
            f'<text x="{left - 4}" y="{py + 3:.1f}" text-anchor="end" font-size="10">'
            f"{_tick(yv)}</text>"
        )
        parts.append(
            f'<line x1="{left}" y1="{py:.1f}" x2="{WIDTH - RIGHT}" y2="{py:.1f}" stroke="#eee"/>'
        )
    return parts


def _path(series: Series, scale: _Scale, colour: str) -> str:
    points: list[str] = []
    previous_y: float | None = None
    for x, y in series.points:
        if series.step and previous_y is not None:
            points.append(f"{scale.x(x):.1f},{scale.y(previous_y):.1f}")
        points.append(f"{scale.x(x):.1f},{scale.y(y):.1f}")
        previous_y = y
    return (
        f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" '
        f'points="{" ".join(points)}"><title>{escape(series.name)}</title></polyline>'
    )


def _legend(series: Sequence[Series]) -> list[str]:
    x, height = WIDTH - RIGHT - 154, 14 * len(series) + 6
    parts = [
        f'<rect x="{x}" y="{TOP}" width="150" height="{height}" fill="white" '
        'fill-opacity="0.85" stroke="#ddd"/>'
    ]
    for i, s in enumerate(series):
        y = TOP + 4 + 14 * i
        colour = COLOURS[i % len(COLOURS)]
        parts.append(
            f'<rect x="{WIDTH - RIGHT - 150}" y="{y}" width="10" height="10" fill="{colour}"/>'
        )
        parts.append(
            f'<text x="{WIDTH - RIGHT - 136}" y="{y + 9}" font-size="11">{escape(s.name)}</text>'
        )
    return parts


def _tick(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"
