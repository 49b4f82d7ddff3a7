"""Small self-drawn SVG charts: no scripts, no external files, so they open offline.

A `Chart` holds lines or steps (optionally stacked into areas), on a linear or logarithmic x
axis with round tick values, a y axis on the left and, for series marked `right`, a second one
on the right (another unit on the same time axis). `draw` renders one chart as an `<svg>`
element, `figure` wraps it for an HTML page, and `document` puts a headline over charts stacked
one below the other, as one standalone SVG file. Text in, text out: the caller writes it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from html import escape

__all__ = ["Chart", "Series", "document", "draw", "figure", "nice_ticks"]

LEFT, TOP, BOTTOM = 64, 52, 44
RIGHT, RIGHT_WITH_AXIS = 16, 56
LEGEND_Y = 32
HEADLINE_H = 30
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]
    step: bool = False
    colour: str | None = None
    """A fixed colour (such as one per worker state); by default the next of the palette."""
    right: bool = False
    """Read against the right-hand y axis (drawn as a line, never stacked)."""


@dataclass(frozen=True)
class Chart:
    """One chart. `log_x` spaces the x axis by decades (values <= 0 are left out); `x_range`
    and `y_range` fix an axis (to align charts over one timeline, or a share on 0..1);
    `stacked` draws the left axis's step series as areas piled on each other (they must share
    their x values); `integer_y` keeps y ticks on whole numbers (counts); `markers` draws a dot
    on every point (for a few measured points, such as sweep steps: one alone is still
    visible); `x_marks` draws labelled dashed vertical lines (such as where each phase of a
    scenario starts); `right_label` names the right axis, whose ticks take the colour of its
    first series."""

    title: str
    series: Sequence[Series]
    x_label: str
    y_label: str
    right_label: str = ""
    log_x: bool = False
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None
    stacked: bool = False
    integer_y: bool = False
    markers: bool = False
    x_marks: Sequence[tuple[float, str]] = ()
    width: int = 640
    height: int = 320


def figure(chart: Chart) -> str:
    """The chart inside an HTML `<figure>`."""
    return f"<figure>{draw(chart)}</figure>"


def document(headline: str, charts: Sequence[Chart]) -> str:
    """A standalone SVG file: `headline` on top, then the charts one below the other, on a
    white background."""
    width = max((chart.width for chart in charts), default=640)
    margin = max((_right_margin(chart) for chart in charts), default=RIGHT)
    parts, y = [], HEADLINE_H
    for chart in charts:  # one right margin for all, so that their x axes line up
        parts.append(f'<g transform="translate(0 {y})">{_draw(chart, margin)}</g>')
        y += chart.height
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {y}" width="{width}" '
            f'height="{y}" font-family="sans-serif">',
            '<rect width="100%" height="100%" fill="white"/>',
            f'<text x="{LEFT}" y="20" font-size="14">{escape(headline)}</text>',
            *parts,
            "</svg>",
        ]
    )


def draw(chart: Chart) -> str:
    """The chart as one `<svg>` element; a chart without points says "no data"."""
    return _draw(chart, _right_margin(chart))


def _draw(chart: Chart, right_margin: float) -> str:
    drawn = [_positive_x(s) if chart.log_x else s for s in chart.series]
    drawn = [s for s in drawn if s.points]
    if not drawn:
        return _svg(chart, [_text(chart.width / 2, chart.height / 2, "no data", "middle")])
    left = [s for s in drawn if not s.right]
    layers = _stack(left) if chart.stacked else [(s, None) for s in left]
    right = [(s, None) for s in drawn if s.right]
    frame = _frame(chart, [s for s, _ in layers], [s for s, _ in right], right_margin)
    colours = {s.name: s.colour or COLOURS[i % len(COLOURS)] for i, s in enumerate(drawn)}
    marks = [
        _area(s, below, frame, colours[s.name])
        if chart.stacked
        else _line(s, frame, colours[s.name])
        for s, below in layers
    ]
    marks += [_line(s, frame, colours[s.name]) for s, _ in right]
    if chart.markers:
        marks += [_dots(s, frame, colours[s.name]) for s, _ in [*layers, *right]]
    right_colour = colours[right[0][0].name] if right else ""
    return _svg(
        chart,
        [
            *_axes(frame, chart.x_label, chart.y_label),
            *_right_axis(frame, chart.right_label, right_colour),
            *(_x_mark(x, label, frame) for x, label in chart.x_marks if frame.x.covers(x)),
            *marks,
            *_legend([(s.name, colours[s.name]) for s in drawn]),
        ],
    )


_MAX_TICKS = 100


def nice_ticks(low: float, high: float, count: int = 5, min_step: float = 0.0) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten apart, at least `min_step`) covering
    low..high, about `count` of them."""
    if not high > low:
        return [low]
    raw = max((high - low) / max(count - 1, 1), min_step)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    steps = min(math.floor((high - first) / step + 1e-9), _MAX_TICKS - 1)
    # By index, not by adding `step` until past `high`: near a large value a step below the
    # float's resolution would add nothing, and such a loop would never end.
    ticks = list(dict.fromkeys(round(first + i * step, 12) for i in range(steps + 1)))
    return ticks if len(ticks) >= 2 else [low, high]


def _log_ticks(low: float, high: float) -> list[float]:
    """Powers of ten within low..high (with 2x and 5x between them when there are few)."""
    start, stop = math.floor(math.log10(low)), math.ceil(math.log10(high))
    multiples = (1, 2, 5) if stop - start <= 3 else (1,)
    ticks = [m * 10.0**e for e in range(start, stop + 1) for m in multiples]
    inside = [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]
    return inside if len(inside) >= 2 else nice_ticks(low, high, 3)


@dataclass(frozen=True)
class _Axis:
    """Values from `low` to `high` onto pixels from `start` to `end`."""

    low: float
    high: float
    start: float
    end: float
    log: bool = False
    min_step: float = 0.0

    def at(self, value: float) -> float:
        if self.log:
            share = math.log10(value / self.low) / math.log10(self.high / self.low)
        else:
            share = (value - self.low) / (self.high - self.low)
        return self.start + share * (self.end - self.start)

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high

    def ticks(self) -> list[float]:
        if self.log:
            return _log_ticks(self.low, self.high)
        return nice_ticks(self.low, self.high, min_step=self.min_step)


@dataclass(frozen=True)
class _Frame:
    """The plot area's edges in pixels, and the axes that place values in it."""

    left: float
    top: float
    right: float
    bottom: float
    x: _Axis
    y: _Axis
    y_right: _Axis | None = None

    def point(self, series: Series, x: float, y: float) -> tuple[float, float]:
        axis = self.y_right if series.right and self.y_right is not None else self.y
        return self.x.at(x), axis.at(y)


def _right_margin(chart: Chart) -> float:
    return RIGHT_WITH_AXIS if any(s.right for s in chart.series) else RIGHT


def _frame(
    chart: Chart, left: Sequence[Series], right: Sequence[Series], right_margin: float
) -> _Frame:
    edge = chart.width - right_margin
    bottom = chart.height - BOTTOM
    xs = [x for s in [*left, *right] for x, _ in s.points]
    x0, x1 = chart.x_range or (min(xs), max(xs))
    x_axis = _Axis(*_span(x0, x1, chart.log_x), LEFT, edge, chart.log_x)
    y_axis = _y_axis(left, chart.y_range, chart.integer_y, bottom)
    y_right = _y_axis(right, None, chart.integer_y, bottom) if right else None
    return _Frame(LEFT, TOP, edge, bottom, x_axis, y_axis, y_right)


def _y_axis(
    series: Sequence[Series], fixed: tuple[float, float] | None, integer: bool, bottom: float
) -> _Axis:
    ys = [y for s in series for _, y in s.points] or [0.0]
    y0, y1 = fixed or (min(0.0, min(ys)), max(ys))
    if integer:
        y1 = max(y1, y0 + 1)
    return _Axis(*_span(y0, y1, False), bottom, TOP, min_step=1.0 if integer else 0.0)


def _span(low: float, high: float, log: bool) -> tuple[float, float]:
    if not (math.isfinite(low) and math.isfinite(high)):
        return (1.0, 10.0) if log else (0.0, 1.0)
    if log:
        return (low / 1.5, high * 1.5) if high / low < 1.01 else (low, high)
    if high - low < 1e-12 + max(abs(low), abs(high)) * 1e-9:  # a flat line: give it room
        margin = max(0.5, abs(high) * 1e-6)
        return low - margin, high + margin
    return low, high


def _positive_x(series: Series) -> Series:
    return replace(series, points=[(x, y) for x, y in series.points if x > 0])


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


def _svg(chart: Chart, body: Sequence[str]) -> str:
    width, height, title = chart.width, chart.height, escape(chart.title)
    return "".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{title}">',
            f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14" '
            f'font-weight="600">{title}</text>',
            *body,
            "</svg>",
        ]
    )


def _text(x: float, y: float, text: str, anchor: str, extra: str = "") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="10"{extra}>'
        f"{escape(text)}</text>"
    )


def _axes(frame: _Frame, x_label: str, y_label: str) -> list[str]:
    left, top, right, bottom = frame.left, frame.top, frame.right, frame.bottom
    middle = (top + bottom) / 2
    parts = [
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#333"/>',
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#333"/>',
        f'<text x="{(left + right) / 2}" y="{bottom + BOTTOM - 8}" text-anchor="middle" '
        f'font-size="12">{escape(x_label)}</text>',
        f'<text x="14" y="{middle}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {middle})">{escape(y_label)}</text>',
    ]
    for xv in frame.x.ticks():
        px = frame.x.at(xv)
        parts.append(
            f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{bottom}" stroke="#f0f0f0"/>'
        )
        parts.append(_text(px, bottom + 16, _tick(xv), "middle"))
    for yv in frame.y.ticks():
        py = frame.y.at(yv)
        parts.append(f'<line x1="{left}" y1="{py:.1f}" x2="{right}" y2="{py:.1f}" stroke="#eee"/>')
        parts.append(_text(left - 4, py + 3, _tick(yv), "end"))
    return parts


def _right_axis(frame: _Frame, label: str, colour: str) -> list[str]:
    if frame.y_right is None:
        return []
    x, middle = frame.right, (frame.top + frame.bottom) / 2
    fill = f' fill="{colour}"'
    parts = [
        f'<line x1="{x}" y1="{frame.top}" x2="{x}" y2="{frame.bottom}" stroke="#333"/>',
        f'<text x="{x + 44}" y="{middle}" text-anchor="middle" font-size="12"{fill} '
        f'transform="rotate(90 {x + 44} {middle})">{escape(label)}</text>',
    ]
    for value in frame.y_right.ticks():
        parts.append(_text(x + 4, frame.y_right.at(value) + 3, _tick(value), "start", fill))
    return parts


def _coordinates(series: Series, frame: _Frame) -> list[tuple[float, float]]:
    points: list[tuple[float, float]] = []
    previous_y: float | None = None
    for x, y in series.points:
        if series.step and previous_y is not None:
            points.append(frame.point(series, x, previous_y))
        points.append(frame.point(series, x, y))
        previous_y = y
    return points


def _line(series: Series, frame: _Frame, colour: str) -> str:
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in _coordinates(series, frame))
    return (
        f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" '
        f'points="{points}"><title>{escape(series.name)}</title></polyline>'
    )


def _x_mark(x: float, label: str, frame: _Frame) -> str:
    px = frame.x.at(x)
    return (
        f'<line x1="{px:.1f}" y1="{frame.top}" x2="{px:.1f}" y2="{frame.bottom}" stroke="#888" '
        f'stroke-dasharray="4 3"/><text x="{px + 3:.1f}" y="{frame.top + 10}" font-size="10" '
        f'fill="#555">{escape(label)}</text>'
    )


def _dots(series: Series, frame: _Frame, colour: str) -> str:
    return "".join(
        f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}">'
        f"<title>{escape(series.name)}: {_tick(y)} at {_tick(x)}</title></circle>"
        for (x, y), (cx, cy) in zip(
            series.points, (frame.point(series, x, y) for x, y in series.points), strict=True
        )
    )


def _area(series: Series, below: Series | None, frame: _Frame, colour: str) -> str:
    top = _coordinates(replace(series, step=True), frame)
    if below is None:
        base = [(x, frame.y.at(0.0)) for x, _ in top]
    else:
        base = _coordinates(replace(below, step=True), frame)
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
