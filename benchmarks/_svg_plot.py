"""Small SVG line plots for the benchmarks' figures, without matplotlib.

A grid of panels (rows x columns), each with a linear x axis from 0 (or a logarithmic
one over the data's range), a logarithmic or linear y axis (the data's range or given limits; what falls outside is clipped at the
plot area's border), polylines with or without markers, single points, optional dashed
reference lines and, where a panel asks for it, a legend below its plot area (so it never
covers the data). Standard library only; every number is written with fixed precision,
so the same input gives a byte-identical file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from xml.sax.saxutils import escape

# matplotlib's default colour cycle ("tab10"), so the figures read like the earlier ones.
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
# Panel geometry in pixels: width, plot height, margins around the plot area (room for
# the y tick labels and axis label on the left, the title on top, the x ticks and axis
# label below) and the height of one legend row.
PANEL_W, PLOT_H, LEFT, RIGHT, TOP, BELOW, ROW = 400, 250, 64, 16, 28, 44, 13
PLOT_W = PANEL_W - LEFT - RIGHT


@dataclass
class Series:
    """A curve. ``marker``: None, "circle", "diamond" or "square"; ``line=False`` draws
    the markers only (a single point); ``dash``: an SVG dash array ("1.5,2" is dotted).
    Without a ``label`` the series has no legend entry."""
    x: list
    y: list
    label: str | None = None
    color: str = "#000000"
    marker: str | None = None
    line: bool = True
    width: float = 1.5
    opacity: float = 1.0
    dash: str | None = None


@dataclass
class Panel:
    """One plot. ``hline``/``vline``: (value, label) of a dashed grey reference line (an
    ``hline`` outside the y range is left out). ``yscale``: "log" or "linear"; ``ylim``:
    (low, high), else the data's range plus a little padding. ``xscale``: "linear" (from
    0) or "log" (the positive data's range). ``legend=False`` leaves the legend out, for
    panels whose series another panel's legend already names."""
    title: str
    series: list = field(default_factory=list)
    hline: tuple | None = None
    vline: tuple | None = None
    xlabel: str = "wall time (s)"
    ylabel: str = "training objective"
    yscale: str = "log"
    ylim: tuple | None = None
    xscale: str = "linear"
    legend: bool = True


def fmt(value):
    """Compact tick text: 120, 0.0083, 1e-05 -> 1e-5."""
    mantissa, _, exponent = f"{value:g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


def nice_step(span, count):
    """A step of 1, 2 or 5 times a power of ten giving about ``count`` intervals."""
    raw = span / count
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def log_ticks(low, high):
    """At least 3 ticks in [low, high] for a log axis: decades if there are enough,
    else 1-2-5 or 1..9 within each decade, else (a very narrow range) evenly spaced."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for multipliers in ((1,), (1, 2, 5), range(1, 10)):
        ticks = [m * 10.0**k for k in decades for m in multipliers if low <= m * 10.0**k <= high]
        if len(ticks) >= 3:
            return ticks
    for count in (4, 8):  # 8 intervals of at most 2.5x the span/8 always hold 3 ticks
        ticks = multiples(low, high, nice_step(high - low, count))
        if len(ticks) >= 3:
            break
    return ticks


def multiples(low, high, step):
    """The multiples of ``step`` in [low, high]."""
    return [i * step for i in range(math.ceil(low / step), math.floor(high / step) + 1)]


def linear_ticks(low, high):
    """(value, label) of evenly spaced ticks in [low, high], labelled with as many decimals
    as the step needs, so that a narrow range still reads 0.00830, 0.00832, ..."""
    step = nice_step(high - low, 8)
    decimals = max(0, -math.floor(math.log10(step)))
    return [(tick, f"{tick:.{decimals}f}") for tick in multiples(low, high, step)]


def finite_points(series, log=True, xlog=False):
    """The series' (x, y) pairs that the axes can show."""
    # Infinite values (a diverged Adam run), and on a log axis zero or negative ones, are
    # left out, as matplotlib leaves them out.
    return [(x, y) for x, y in zip(series.x, series.y)
            if math.isfinite(y) and (y > 0 or not log) and (x > 0 or not xlog)]


def text(x, y, content, size, anchor="middle", extra=""):
    """A <text> element; ``content`` is escaped for XML."""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>'
            f"{escape(content)}</text>")


def marker(shape, x, y, color):
    """A filled circle, square or (any other shape) diamond centred on (x, y)."""
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>'
    if shape == "square":
        return f'<rect x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" fill="{color}"/>'
    return (f'<polygon points="{x:.1f},{y - 4:.1f} {x + 4:.1f},{y:.1f} {x:.1f},{y + 4:.1f} '
            f'{x - 4:.1f},{y:.1f}" fill="{color}"/>')


def draw(series, points):
    """A series' SVG elements; ``points`` already in pixels."""
    out = []
    if series.line and len(points) > 1:
        dash = f' stroke-dasharray="{series.dash}"' if series.dash else ""
        out.append(f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}" '
                   f'fill="none" stroke="{series.color}" stroke-width="{series.width}" '
                   f'stroke-opacity="{series.opacity}" stroke-linejoin="round"{dash}/>')
    if series.marker:
        out += [marker(series.marker, x, y, series.color) for x, y in points]
    return out


def draw_panel(panel, clip_id):
    """The SVG elements of one panel, in its own coordinates (origin top left);
    ``clip_id``: a name for its plot area's clip path, unique in the file."""
    log, xlog = panel.yscale == "log", panel.xscale == "log"
    axis = math.log10 if log else float  # y in the units in which the axis is uniform
    data = [p for s in panel.series for p in finite_points(s, log, xlog)]
    xs = [x for x, _ in data] + ([panel.vline[0]] if panel.vline else [])
    if xlog:
        # The positive data's range in decades, padded by 4%.
        x_lo, x_hi = math.log10(min(xs)), math.log10(max(xs))
        x_pad = 0.04 * (x_hi - x_lo) or 0.05
        x_lo, x_hi = x_lo - x_pad, x_hi + x_pad
        x_ticks = [(t, fmt(t)) for t in log_ticks(10**x_lo, 10**x_hi)]

        def x_px(x):
            return LEFT + PLOT_W * (math.log10(x) - x_lo) / (x_hi - x_lo)
    else:
        # x from 0 to a nice value past every point (rounds may end after the budget),
        # from all the data even if ``ylim`` hides some, so that panels of the same
        # series align.
        x_max = max(xs) or 1.0
        x_step = nice_step(x_max, 5)
        x_max = math.ceil(x_max / x_step) * x_step
        x_ticks = [(i * x_step, fmt(i * x_step)) for i in range(round(x_max / x_step) + 1)]

        def x_px(x):
            return LEFT + PLOT_W * x / x_max
    if panel.ylim:
        lo, hi = map(axis, panel.ylim)
    else:
        ys = [axis(y) for _, y in data] + ([axis(panel.hline[0])] if panel.hline else [])
        # 4% of the range as padding, so no marker sits on the frame (if all values are
        # equal, 1% of a decade or of the value).
        lo, hi = min(ys), max(ys)
        pad = 0.04 * (hi - lo) or 0.01 * (1.0 if log else abs(hi) or 1.0)
        lo, hi = lo - pad, hi + pad

    def y_px(y):
        return TOP + PLOT_H * (hi - axis(y)) / (hi - lo)

    grey = 'stroke="#dddddd" stroke-width="1"'
    out = [text(PANEL_W / 2, 18, panel.title, 12, extra=' font-weight="bold"')]
    for tick, label in x_ticks:
        x = x_px(tick)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + PLOT_H}" {grey}/>')
        out.append(text(x, TOP + PLOT_H + 13, label, 9))
    y_ticks = ([(t, fmt(t)) for t in log_ticks(10**lo, 10**hi)] if log
               else linear_ticks(lo, hi))
    for tick, label in y_ticks:
        y = y_px(tick)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + PLOT_W}" y2="{y:.1f}" {grey}/>')
        out.append(text(LEFT - 4, y + 3, label, 9, anchor="end"))
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{PLOT_H}" fill="none" '
               'stroke="#000000" stroke-width="1"/>')
    out.append(text(LEFT + PLOT_W / 2, TOP + PLOT_H + 28, panel.xlabel, 10))
    out.append(text(14, TOP + PLOT_H / 2, panel.ylabel, 10,
                    extra=f' transform="rotate(-90 14 {TOP + PLOT_H / 2:.1f})"'))
    reference = 'stroke="#555555" stroke-width="1" stroke-dasharray="5,3"'
    if panel.hline and lo <= axis(panel.hline[0]) <= hi:
        y = y_px(panel.hline[0])
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + PLOT_W}" y2="{y:.1f}" '
                   f'{reference}/>')
        out.append(text(LEFT + PLOT_W - 3, y - 3, panel.hline[1], 8, anchor="end"))
    if panel.vline:
        x = x_px(panel.vline[0])
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + PLOT_H}" {reference}/>')
        out.append(text(x + 3, TOP + 10, panel.vline[1], 8, anchor="start"))
    # The curves, cut at the plot area's border: lines leave it there, markers outside
    # are hidden (with ``ylim``, some data lies outside).
    out.append(f'<clipPath id="{clip_id}"><rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" '
               f'height="{PLOT_H}"/></clipPath>')
    out.append(f'<g clip-path="url(#{clip_id})">')
    for series in panel.series:
        out += draw(series, [(x_px(x), y_px(y)) for x, y in finite_points(series, log, xlog)])
    out.append("</g>")
    # The legend: one row per labelled series below the x axis label.
    labelled = [s for s in panel.series if s.label is not None] if panel.legend else []
    for row, series in enumerate(labelled):
        y = TOP + PLOT_H + BELOW + ROW * row
        # A short stretch of the line (if any) with one marker (if any) in its middle.
        out += draw(replace(series, marker=None), [(LEFT, y), (LEFT + 20, y)])
        if series.marker:
            out.append(marker(series.marker, LEFT + 10, y, series.color))
        out.append(text(LEFT + 26, y + 3, series.label, 8, anchor="start"))
    return out


def write_svg(path, grid):
    """Writes ``grid``, a list of rows of panels, to the SVG file ``path``."""
    # Each row is as tall as its longest legend needs.
    heights = [TOP + PLOT_H + BELOW + ROW * max(
        sum(s.label is not None for s in p.series) if p.legend else 0 for p in row)
        for row in grid]
    width, height = PANEL_W * max(len(row) for row in grid), sum(heights)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>']
    for r, row in enumerate(grid):
        for c, panel in enumerate(row):
            out.append(f'<g transform="translate({PANEL_W * c} {sum(heights[:r])})">')
            out += draw_panel(panel, f"plot-{r}-{c}")
            out.append("</g>")
    Path(path).write_text("\n".join(out + ["</svg>"]) + "\n")
