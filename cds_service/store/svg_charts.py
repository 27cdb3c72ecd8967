"""Charts drawn as inline SVG on the server: no script, no font, no file of their own, so a
page that holds them is one file that opens anywhere, offline, and prints as it shows.

Two shapes serve the governance page: small multiples (one row per rule, weeks along the
x axis: bars of counts, or a line of rates), and horizontal bars (one per rule, reason or
service, each of one or more segments). Every mark carries its numbers twice: in a `<title>`
(the tooltip, and what a screen reader reads) and in `data-*` attributes (what a test reads).
Series differ by pattern and by the text beside them as well as by colour, and a flagged row
is marked in words ("⚑ FLAGGED") and by a heavy rule, never by colour alone.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from cds_service.store.report import clean

WIDTH = 960
LABEL_WIDTH = 250  # the row labels, left of the plot
NOTE_WIDTH = 150  # the row notes, right of the plot
PLOT_LEFT = LABEL_WIDTH + 10
PLOT_RIGHT = WIDTH - NOTE_WIDTH - 10
FLAG_MARK = "⚑ FLAGGED"

# Shared by every chart of a page: put once in the page, before the charts (ids are global).
DEFS = (
    '<svg class="defs" width="0" height="0" aria-hidden="true" focusable="false"><defs>'
    '<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fde9c8"/>'
    '<rect width="2.5" height="6" fill="#b7791f"/></pattern>'
    "</defs></svg>"
)


def text(value: object) -> str:
    """Any text for an element or an attribute: control characters gone, markup escaped."""
    return html.escape(clean(str(value)), quote=True)


def _fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _shorten(label: str, limit: int = 38) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _svg(height: float, label: str, body: list[str]) -> str:
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} {height:.0f}" width="100%" '
            f'role="img" aria-label="{text(label)}" xmlns="http://www.w3.org/2000/svg">'
            + "".join(body) + "</svg>")


def _row_label(y: float, label: str, flagged: bool, row_height: float) -> list[str]:
    parts = []
    if flagged:
        parts.append(f'<rect class="flag-band" x="0" y="{y:.1f}" width="{WIDTH}" '
                     f'height="{row_height:.1f}"/>'
                     f'<rect class="flag-rule" x="0" y="{y:.1f}" width="5" '
                     f'height="{row_height:.1f}"/>')
    middle = y + row_height / 2
    if flagged:
        parts.append(f'<text class="row-label flagged" x="12" y="{middle - 3:.1f}">'
                     f"<title>{text(label)}</title>{text(_shorten(label, 34))}</text>"
                     f'<text class="flag-text" x="12" y="{middle + 10:.1f}">{FLAG_MARK}</text>')
    else:
        parts.append(f'<text class="row-label" x="12" y="{middle + 4:.1f}">'
                     f"<title>{text(label)}</title>{text(_shorten(label, 34))}</text>")
    return parts


def _week_axis(axis: Sequence[date], y: float) -> list[str]:
    band = (PLOT_RIGHT - PLOT_LEFT) / max(len(axis), 1)
    every = max(1, math.ceil(len(axis) / 7))
    parts = [f'<line class="axis" x1="{PLOT_LEFT}" y1="{y:.1f}" x2="{PLOT_RIGHT}" '
             f'y2="{y:.1f}"/>']
    for index, week in enumerate(axis):
        if index % every:
            continue
        x = PLOT_LEFT + band * index
        parts.append(f'<line class="tick" x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" '
                     f'y2="{y + 4:.1f}"/><text class="tick-label" x="{x:.1f}" '
                     f'y="{y + 16:.1f}">{week.isoformat()}</text>')
    parts.append(f'<text class="tick-label" x="{PLOT_LEFT}" y="{y + 30:.1f}">'
                 "week starting (Monday, UTC)</text>")
    return parts


@dataclass(frozen=True)
class WeeklyCounts:
    """One row of weekly bars: per week, what was shown and what was recorded silently."""

    label: str
    flagged: bool
    shown: Mapping[date, int]
    silent: Mapping[date, int]


def weekly_bars(rows: Sequence[WeeklyCounts], axis: Sequence[date], label: str) -> str:
    """Small multiples of weekly bars, each row on its own scale (its peak written at its
    right): shown cards solid, silent ones hatched on top of them."""
    row_height, top = 38.0, 6.0
    band = (PLOT_RIGHT - PLOT_LEFT) / max(len(axis), 1)
    width = max(band * 0.8, 0.6)
    body: list[str] = []
    for number, row in enumerate(rows):
        y = top + number * row_height
        body += _row_label(y, row.label, row.flagged, row_height)
        base = y + row_height - 5
        peak = max([row.shown.get(w, 0) + row.silent.get(w, 0) for w in axis] or [0])
        body.append(f'<line class="baseline" x1="{PLOT_LEFT}" y1="{base:.1f}" '
                    f'x2="{PLOT_RIGHT}" y2="{base:.1f}"/>')
        scale = (row_height - 10) / peak if peak else 0.0
        for index, week in enumerate(axis):
            x = PLOT_LEFT + band * index + (band - width) / 2
            shown, silent = row.shown.get(week, 0), row.silent.get(week, 0)
            stacked = base
            for series, value in (("shown", shown), ("silent", silent)):
                if not value:
                    continue
                height = value * scale
                stacked -= height
                body.append(
                    f'<rect class="bar {series}" x="{x:.2f}" y="{stacked:.2f}" '
                    f'width="{width:.2f}" height="{height:.2f}" data-row="{text(row.label)}" '
                    f'data-week="{week.isoformat()}" data-series="{series}" '
                    f'data-value="{value}"><title>{text(row.label)}, week of '
                    f"{week.isoformat()}: {value} {series}</title></rect>")
        body.append(f'<text class="row-note" x="{PLOT_RIGHT + 10}" y="{base - 8:.1f}">'
                    f"peak {peak}/week</text>")
    height = top + len(rows) * row_height
    body += _week_axis(axis, height + 2)
    return _svg(height + 40, label, body)


@dataclass(frozen=True)
class WeeklyRates:
    """One row of a weekly rate: per week, (events, out of) — overridden of decided."""

    label: str
    flagged: bool
    counts: Mapping[date, tuple[int, int]]
    note: str


def weekly_rates(rows: Sequence[WeeklyRates], axis: Sequence[date], label: str,
                 threshold: float, enough: int) -> str:
    """Small multiples of a weekly rate, 0 to 100 % in every row, the threshold dashed. A week
    with fewer than `enough` decisions is drawn hollow: too few to read much into."""
    row_height, top = 46.0, 6.0
    band = (PLOT_RIGHT - PLOT_LEFT) / max(len(axis), 1)
    body: list[str] = []
    for number, row in enumerate(rows):
        y = top + number * row_height
        body += _row_label(y, row.label, row.flagged, row_height)
        low, high = y + row_height - 6, y + 6

        def y_of(rate: float, low: float = low, high: float = high) -> float:
            return low - rate * (low - high)

        body.append(f'<line class="baseline" x1="{PLOT_LEFT}" y1="{low:.1f}" '
                    f'x2="{PLOT_RIGHT}" y2="{low:.1f}"/>'
                    f'<line class="threshold" x1="{PLOT_LEFT}" y1="{y_of(threshold):.1f}" '
                    f'x2="{PLOT_RIGHT}" y2="{y_of(threshold):.1f}"><title>flag above '
                    f"{threshold:.0%}</title></line>")
        path: list[str] = []
        points: list[str] = []
        previous = False
        for index, week in enumerate(axis):
            events, total = row.counts.get(week, (0, 0))
            if not total:
                previous = False
                continue
            rate = events / total
            x, y_point = PLOT_LEFT + band * (index + 0.5), y_of(rate)
            path.append(f"{'L' if previous else 'M'}{x:.2f},{y_point:.2f}")
            previous = True
            kind = "point" if total >= enough else "point few"
            points.append(
                f'<circle class="{kind}" cx="{x:.2f}" cy="{y_point:.2f}" r="3.2" '
                f'data-row="{text(row.label)}" data-week="{week.isoformat()}" '
                f'data-value="{rate:.4f}" data-events="{events}" data-total="{total}">'
                f"<title>{text(row.label)}, week of {week.isoformat()}: {rate:.0%} overridden "
                f"({events} of {total} decisions)</title></circle>")
        if path:
            body.append(f'<path class="rate-line" d="{" ".join(path)}" '
                        f'data-row="{text(row.label)}"/>')
        body += points
        body.append(f'<text class="row-note" x="{PLOT_RIGHT + 10}" y="{low - 12:.1f}">'
                    f"{text(row.note)}</text>")
    height = top + len(rows) * row_height
    body += _week_axis(axis, height + 2)
    return _svg(height + 40, label, body)


@dataclass(frozen=True)
class Segment:
    series: str  # a css class: shown, silent, accepted, overridden, reason, other
    value: float
    title: str


@dataclass(frozen=True)
class Bar:
    label: str
    segments: tuple[Segment, ...]
    note: str = ""
    flagged: bool = False


@dataclass(frozen=True)
class BarGroup:
    heading: str
    bars: tuple[Bar, ...]
    flagged: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


def horizontal_bars(groups: Sequence[BarGroup], label: str, scale_max: float | None = None,
                    row_height: float = 22.0) -> str:
    """Horizontal bars of stacked segments, all on one scale (`scale_max`, else the longest
    bar), grouped under headings when a group has one."""
    longest = max([sum(s.value for s in bar.segments) for g in groups for bar in g.bars] or [0])
    full = scale_max if scale_max is not None else longest
    per_unit = (PLOT_RIGHT - PLOT_LEFT) / full if full else 0.0
    body: list[str] = []
    y = 6.0
    for group in groups:
        if group.heading:
            if group.flagged:
                body.append(f'<rect class="flag-rule" x="0" y="{y:.1f}" width="5" '
                            f'height="{row_height:.1f}"/>')
            mark = f" — {FLAG_MARK}" if group.flagged else ""
            body.append(f'<text class="group-heading{" flagged" if group.flagged else ""}" '
                        f'x="12" y="{y + row_height - 7:.1f}">{text(group.heading)}{mark}</text>')
            y += row_height
        for bar in group.bars:
            height = max(row_height, 32.0) if bar.flagged else row_height  # two-line label
            body += _row_label(y, bar.label, bar.flagged, height)
            x = float(PLOT_LEFT)
            top = y + (height - row_height) / 2
            for segment in bar.segments:
                width = segment.value * per_unit
                if width > 0:
                    body.append(
                        f'<rect class="bar {text(segment.series)}" x="{x:.2f}" '
                        f'y="{top + 3:.1f}" width="{width:.2f}" height="{row_height - 6:.1f}" '
                        f'data-row="{text(bar.label)}" data-series="{text(segment.series)}" '
                        f'data-value="{_fmt(segment.value)}"><title>{text(segment.title)}'
                        "</title></rect>")
                x += width
            body.append(f'<text class="bar-note" x="{x + 6:.1f}" y="{top + row_height - 7:.1f}">'
                        f"{text(bar.note)}</text>")
            y += height
        y += 6
    return _svg(y + 4, label, body)
