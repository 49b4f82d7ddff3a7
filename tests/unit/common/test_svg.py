"""SVG charts: escaping, round ticks, log axes, stacked areas, a right axis, and documents."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.svg import Chart, Series, document, draw, figure, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"


def test_a_chart_is_inline_svg_and_escapes_names() -> None:
    svg = figure(Chart("a <b>", [Series("s&p", [(0, 1), (1, 2)])], "x", "y"))
    assert svg.startswith("<figure><svg")
    assert svg.count("<svg") == 1
    assert "<polyline" in svg
    assert "a &lt;b&gt;" in svg
    assert "s&amp;p" in svg
    empty = draw(Chart("t", [Series("e", [])], "x", "y"))
    assert "no data" in empty
    ET.fromstring(empty)


@given(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.floats(1e-3, 1e6, allow_nan=False),
    st.integers(2, 10),
)
def test_nice_ticks_are_round_even_steps_inside_the_range(
    low: float, width: float, count: int
) -> None:
    high = low + width
    ticks = nice_ticks(low, high, count)
    assert 2 <= len(ticks) <= 2 * count + 1
    assert all(low - 1e-6 * width <= t <= high + 1e-6 * width for t in ticks)
    if ticks != [low, high]:  # the fallback when no round value fits twice in a tiny range
        step = ticks[1] - ticks[0]
        assert all(b - a == pytest.approx(step, rel=1e-6) for a, b in itertools.pairwise(ticks))
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert round(mantissa, 6) in (1.0, 2.0, 5.0, 10.0)


def test_integer_ticks_never_split_a_worker() -> None:
    assert nice_ticks(0, 1, min_step=1) == [0, 1]
    assert nice_ticks(0, 3, min_step=1) == [0, 1, 2, 3]


def test_a_log_axis_leaves_out_zeros_and_labels_decades() -> None:
    chart = Chart("t", [Series("s", [(0.0, 0.2), (0.5, 0.4), (50.0, 1.0)])], "ms", "share",
                  log_x=True)  # fmt: skip
    svg = draw(chart)
    labels = re.findall(r'font-size="10">([^<]+)</text>', svg)
    assert {"1", "10"} <= set(labels)
    assert svg.count(",") == 2  # two points drawn: the zero has no place on a log axis


def test_stacked_areas_pile_up_to_the_total() -> None:
    points_a = [(0.0, 1.0), (1.0, 1.0)]
    points_b = [(0.0, 2.0), (1.0, 2.0)]
    svg = draw(Chart(
        "w", [Series("a", points_a, True, "#111111"), Series("b", points_b, True)], "s", "n",
        stacked=True, integer_y=True,
    ))  # fmt: skip
    assert svg.count("<polygon") == 2
    assert 'fill="#111111"' in svg
    labels = re.findall(r'text-anchor="end" font-size="10">([^<]+)</text>', svg)
    assert labels == ["0", "1", "2", "3"]  # the axis reaches 1 + 2


def test_a_narrow_log_axis_still_gets_ticks_and_single_points_show() -> None:
    svg = draw(Chart("t", [Series("s", [(8.6, 1.0)]), Series("u", [(9.0, 2.0)])], "req/s", "ms",
                     log_x=True, markers=True))  # fmt: skip
    labels = re.findall(r'text-anchor="middle" font-size="10">([^<]+)</text>', svg)
    assert len(labels) >= 2
    assert svg.count("<circle") == 2


def polyline_ys(svg: str, name: str) -> list[float]:
    root = ET.fromstring(svg)
    for line in root.iter(f"{SVG}polyline"):
        title = line.find(f"{SVG}title")
        if title is not None and title.text == name:
            return [float(pair.split(",")[1]) for pair in line.attrib["points"].split()]
    raise AssertionError(f"no line named {name}")


def test_a_right_axis_series_is_read_against_its_own_scale() -> None:
    load = Series("load", [(0.0, 0.0), (1.0, 1000.0)])
    waiting = Series("waiting", [(0.0, 0.0), (1.0, 10.0)], colour="#d62728", right=True)
    svg = draw(Chart("t", [load, waiting], "s", "tokens/s", right_label="requests", integer_y=True))
    assert polyline_ys(svg, "load") == polyline_ys(svg, "waiting")  # both peak at the top
    right_ticks = re.findall(r'text-anchor="start" font-size="10" fill="#d62728">([^<]+)<', svg)
    assert right_ticks[0] == "0"
    assert right_ticks[-1] == "10"
    assert ">requests</text>" in svg


def test_a_document_is_standalone_svg_with_its_charts_on_one_x_axis() -> None:
    top = Chart("a", [Series("x", [(0, 1), (5, 2)]), Series("y", [(0, 3)], right=True)], "s", "n")
    bottom = Chart("b", [Series("z", [(0, 1), (5, 2)])], "s", "n")
    svg = document("headline & more", [top, bottom])
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.attrib["height"] == str(30 + top.height + bottom.height)
    assert "headline &amp; more" in svg
    assert not re.search(r"<script|href=|src=", svg)
    x_axes = [  # the bottom axis of each chart: its right end is the plot area's edge
        line.attrib["x2"]
        for line in root.iter(f"{SVG}line")
        if line.attrib.get("stroke") == "#333" and line.attrib["y1"] == line.attrib["y2"]
    ]
    assert len(x_axes) == 2
    assert x_axes[0] == x_axes[1]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("low", [1e15, 123456789.0, -1e300])
def test_ticks_of_a_range_narrower_than_a_step_the_floats_can_add_end(low: float) -> None:
    high = math.nextafter(low, math.inf)  # one float apart: the step is below the resolution
    # Adding a step below the resolution of floats this large changed nothing, and the loop
    # that added it until past `high` never ended (a chart of a flat series of large values).
    ticks = nice_ticks(low, high)
    assert 2 <= len(ticks) <= 100
    assert ticks == sorted(ticks)


def test_a_flat_series_of_large_values_draws() -> None:
    large = 1e15
    svg = draw(
        Chart("t", [Series("s", [(0.0, large), (1.0, math.nextafter(large, 2e15))])], "x", "y")
    )
    ET.fromstring(svg)
