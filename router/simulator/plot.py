"""A picture of a simulation: load (tokens/s) and workers over time, as a standalone SVG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from router.simulator.results import SimResult, TimelinePoint

__all__ = ["render_svg", "write_plot"]

WIDTH, HEIGHT, MARGIN = 960, 420, 50
MAX_POINTS = 800


def write_plot(path: Path, result: SimResult) -> None:
    path.write_text(render_svg(result), encoding="utf-8")


def render_svg(result: SimResult) -> str:
    step = max(1, len(result.timeline) // MAX_POINTS)
    points = result.timeline[::step]
    span = max((p.t for p in points), default=1.0) or 1.0
    peak_load = max((p.load_tokens_per_s for p in points), default=1.0) or 1.0
    peak_workers = max((max(p.active, p.desired) for p in points), default=1) or 1
    series = [
        ("load tokens/s", "#bbbbbb", [p.load_tokens_per_s / peak_load for p in points]),
        ("desired", "#e07b00", [p.desired / peak_workers for p in points]),
        ("active", "#1f77b4", [p.active / peak_workers for p in points]),
        ("ready", "#2ca02c", [p.ready / peak_workers for p in points]),
    ]
    lines = [_polyline(points, span, values, colour) for _, colour, values in series]
    legend = [
        f'<text x="{MARGIN + 150 * i}" y="20" fill="{colour}">{escape(name)}</text>'
        for i, (name, colour, _) in enumerate(series)
    ]
    title = escape(
        f"{result.trace} / {result.policy}: SLO {result.slo_attainment:.2%}, "
        f"{result.worker_seconds:.0f} worker-s (peak load {peak_load:.0f} tok/s, "
        f"peak {peak_workers} workers, {span:.0f} s)"
    )
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            'font-family="sans-serif" font-size="12">',
            '<rect width="100%" height="100%" fill="white"/>',
            *legend,
            f'<text x="{MARGIN}" y="{HEIGHT - 10}">{title}</text>',
            *lines,
            "</svg>",
        ]
    )


def _polyline(
    points: Sequence[TimelinePoint], span: float, values: list[float], colour: str
) -> str:
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    coords = " ".join(
        f"{MARGIN + p.t / span * inner_w:.1f},{MARGIN + (1 - v) * inner_h:.1f}"
        for p, v in zip(points, values, strict=True)
    )
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.2" points="{coords}"/>'
