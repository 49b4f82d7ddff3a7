"""Small self-drawn SVG charts (no scripts, no external files), for the HTML report: lines or
steps, optionally stacked into areas, on linear or logarithmic axes with round tick values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Series", "line_chart", "nice_ticks"]

WIDTH, HEIGHT = 640, 320
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 52, 44
LEGEND_Y = 32
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    step: bool = False
    colour: str | None = None
    """A fixed colour (such as one per worker state); by default the next of the palette."""


def line_chart(
    title: str,
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    *,
    log_x: bool = False,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    stacked: bool = False,
    integer_y: bool = False,
    markers: bool = False,
    x_marks: Sequence[tuple[float, str]] = (),
) -> str:
    """One chart. `log_x` spaces the x axis by decades (values <= 0 are left out); `x_range` and
    `y_range` fix an axis (to align charts over one timeline, or a share on 0..1); `stacked`
    draws step series as areas piled on each other (they must share their x values);
    `integer_y` keeps y ticks on whole numbers (counts); `markers` draws a dot on every point
    (for a few measured points, such as sweep steps: one alone is still visible); `x_marks`
    draws labelled dashed vertical lines (such as where each phase of a scenario starts)."""
    drawn = [_positive_x(s) if log_x else s for s in series]
    drawn = [s for s in drawn if s.points]
    if not drawn:
        return f"<figure><figcaption>{escape(title)}</figcaption><p>no data</p></figure>"
    layers = _stack(drawn) if stacked else [(s, None) for s in drawn]
    xs = [x for s, _ in layers for x, _ in s.points]
    ys = [y for s, _ in layers for _, y in s.points]
    x0, x1 = x_range or (min(xs), max(xs))
    y0, y1 = y_range or (min(0.0, min(ys)), max(ys))
    if integer_y:
        y1 = max(y1, y0 + 1)
    scale = _Scale(*_span(x0, x1, log_x), *_span(y0, y1, False), log_x, 1.0 if integer_y else 0.0)
    colours = {s.name: s.colour or COLOURS[i % len(COLOURS)] for i, s in enumerate(drawn)}
    marks = [
        _area(s, below, scale, colours[s.name]) if stacked else _line(s, scale, colours[s.name])
        for s, below in layers
    ]
    if markers:
        marks += [_dots(s, scale, colours[s.name]) for s, _ in layers]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
        f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="14" font-weight="600">'
        f"{escape(title)}</text>",
        *_axes(scale, x_label, y_label),
        *(_x_mark(x, label, scale) for x, label in x_marks if scale.x0 <= x <= scale.x1),
        *marks,
        *_legend([(s.name, colours[s.name]) for s in drawn]),
        "</svg>",
    ]
    return "<figure>" + "".join(parts) + "</figure>"


def nice_ticks(low: float, high: float, count: int = 5, min_step: float = 0.0) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten apart, at least `min_step`) covering
    low..high, about `count` of them."""
    if not high > low:
        return [low]
    raw = max((high - low) / max(count - 1, 1), min_step)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks if len(ticks) >= 2 else [low, high]


def _log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten within low..high (with 2x and 5x between them when there are few)."""
    start, stop = math.floor(math.log10(low)), math.ceil(math.log10(high))
    multiples = (1, 2, 5) if stop - start <= 3 else (1,)
    ticks = [m * 10.0**e for e in range(start, stop + 1) for m in multiples]
    inside = [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
    return inside if len(inside) >= 2 else nice_ticks(low, high, 3)


@dataclass(frozen=True)
class _Scale:
    x0: float
    x1: float
    y0: float
    y1: float
    log_x: bool = False
    min_y_step: float = 0.0

    def x(self, value: float) -> float:
        if self.log_x:
            share = math.log10(value / self.x0) / math.log10(self.x1 / self.x0)
        else:
            share = (value - self.x0) / (self.x1 - self.x0)
        return LEFT + share * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return HEIGHT - BOTTOM - (value - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)

    def x_ticks(self) -> list[float]:
        return _log_ticks(self.x0, self.x1) if self.log_x else nice_ticks(self.x0, self.x1)


def _span(low: float, high: float, log: bool) -> tuple[float, float]:
    if not (math.isfinite(low) and math.isfinite(high)):
        return (1.0, 10.0) if log else (0.0, 1.0)
    if log:
        return (low / 1.5, high * 1.5) if high / low < 1.01 else (low, high)
    if high - low < 1e-12:
        return low - 0.5, high + 0.5
    return low, high


def _positive_x(series: Series) -> Series:
    points = [(x, y) for x, y in series.points if x > 0]
    return Series(series.name, points, series.step, series.colour)


def _stack(series: Sequence[Series]) -> list[tuple[Series, Series | None]]:
    """Each series raised by the ones before it, paired with the layer it sits on."""
    layers: list[tuple[Series, Series | None]] = []
    below: Series | None = None
    for s in series:
        base = [y for _, y in below.points] if below else [0.0] * len(s.points)
        raised = Series(s.name, [(x, y + b) for (x, y), b in zip(s.points, base, strict=True)])
        layers.append((raised, below))
        below = raised
    return layers


def _axes(scale: _Scale, x_label: str, y_label: str) -> list[str]:
    bottom, left = HEIGHT - BOTTOM, LEFT
    parts = [
        f'<line x1="{left}" y1="{TOP}" x2="{left}" y2="{bottom}" stroke="#333"/>',
        f'<line x1="{left}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" stroke="#333"/>',
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 8}" text-anchor="middle" '
        f'font-size="12">{escape(x_label)}</text>',
        f'<text x="14" y="{(TOP + bottom) / 2}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {(TOP + bottom) / 2})">{escape(y_label)}</text>',
    ]
    for xv in scale.x_ticks():
        px = scale.x(xv)
        parts.append(
            f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{bottom}" stroke="#f0f0f0"/>'
        )
        parts.append(
            f'<text x="{px:.1f}" y="{bottom + 16}" text-anchor="middle" font-size="10">'
            f"{_tick(xv)}</text>"
        )
    for yv in nice_ticks(scale.y0, scale.y1, min_step=scale.min_y_step):
        py = scale.y(yv)
        parts.append(
            f'<line x1="{left}" y1="{py:.1f}" x2="{WIDTH - RIGHT}" y2="{py:.1f}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{left - 4}" y="{py + 3:.1f}" text-anchor="end" font-size="10">'
            f"{_tick(yv)}</text>"
        )
    return parts


def _coordinates(series: Series, scale: _Scale) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    previous_y: float | None = None
    for x, y in series.points:
        if series.step and previous_y is not None:
            points.append((scale.x(x), scale.y(previous_y)))
        points.append((scale.x(x), scale.y(y)))
        previous_y = y
    return points


def _line(series: Series, scale: _Scale, colour: str) -> str:
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in _coordinates(series, scale))
    return (
        f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" '
        f'points="{points}"><title>{escape(series.name)}</title></polyline>'
    )


def _x_mark(x: float, label: str, scale: _Scale) -> str:
    px = scale.x(x)
    return (
        f'<line x1="{px:.1f}" y1="{TOP}" x2="{px:.1f}" y2="{HEIGHT - BOTTOM}" stroke="#888" '
        f'stroke-dasharray="4 3"/><text x="{px + 3:.1f}" y="{TOP + 10}" font-size="10" '
        f'fill="#555">{escape(label)}</text>'
    )


def _dots(series: Series, scale: _Scale, colour: str) -> str:
    return "".join(
        f'<circle cx="{scale.x(x):.1f}" cy="{scale.y(y):.1f}" r="3" fill="{colour}">'
        f"<title>{escape(series.name)}: {_tick(y)} at {_tick(x)}</title></circle>"
        for x, y in series.points
    )


def _area(series: Series, below: Series | None, scale: _Scale, colour: str) -> str:
    top = _coordinates(Series(series.name, series.points, step=True), scale)
    if below is None:
        base = [(x, scale.y(0.0)) for x, _ in top]
    else:
        base = _coordinates(Series(below.name, below.points, step=True), scale)
    outline = [*top, *reversed(base)]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in outline)
    return (
        f'<polygon fill="{colour}" fill-opacity="0.55" stroke="{colour}" stroke-width="1" '
        f'points="{points}"><title>{escape(series.name)}</title></polygon>'
    )


def _legend(entries: Sequence[tuple[str, str]]) -> list[str]:
    """One row of colour keys under the title, above the plot, so it never hides data."""
    parts: list[str] = []
    x = float(LEFT)
    for name, colour in entries:
        parts.append(f'<rect x="{x:.0f}" y="{LEGEND_Y}" width="10" height="10" fill="{colour}"/>')
        parts.append(
            f'<text x="{x + 14:.0f}" y="{LEGEND_Y + 9}" font-size="11">{escape(name)}</text>'
        )
        x += 24 + 6.5 * len(name)
    return parts


def _tick(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000 or value == round(value):
        return f"{value:,.0f}".replace(",", "\u2009")
    if magnitude >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"
