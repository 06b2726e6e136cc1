"""Charts as server-drawn SVG: the dashboard needs a few bar charts, and geometry computed here
and drawn by a template (escaped like every page, styled by the site's CSS through classes)
needs no script and no third-party front-end code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

SERIES_CLASSES = 6  # CSS has `.series-0` .. `.series-5`


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class LegendEntry:
    series: int
    name: str
    total: int


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    bars: tuple[Bar, ...]
    x_labels: tuple[Label, ...]
    y_labels: tuple[Label, ...]
    gridlines: tuple[float, ...]
    legend: tuple[LegendEntry, ...]
    total: int

    @property
    def empty(self) -> bool:
        return self.total == 0


def _nice_ceiling(value: int) -> int:
    """The next 1, 2 or 5 times a power of ten at or above `value`: round axis ends."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def stacked_bars(
    *,
    title: str,
    days: Sequence[date],
    series: Sequence[tuple[str, Sequence[int]]],
    width: int = 640,
    height: int = 220,
) -> Chart:
    """One stacked bar per day; `series` is (name, one count per day), drawn bottom up."""
    left, right, top, bottom = 40.0, 8.0, 8.0, 22.0
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for _, values in series) for i in range(len(days))]
    ceiling = _nice_ceiling(max(totals, default=0))
    slot = plot_w / max(1, len(days))
    bar_w = max(2.0, slot * 0.7)
    bars: list[Bar] = []
    for i, day in enumerate(days):
        base = top + plot_h
        for index, (name, values) in enumerate(series):
            count = values[i]
            if count <= 0:
                continue
            h = plot_h * count / ceiling
            base -= h
            bars.append(
                Bar(
                    x=round(left + i * slot + (slot - bar_w) / 2, 2),
                    y=round(base, 2),
                    width=round(bar_w, 2),
                    height=round(h, 2),
                    series=index % SERIES_CLASSES,
                    title=f"{day.isoformat()}: {count} {name}",
                )
            )
    every = max(1, len(days) // 7)
    x_labels = tuple(
        Label(round(left + i * slot + slot / 2, 2), height - 6, day.strftime("%d %b"))
        for i, day in enumerate(days)
        if i % every == 0
    )
    steps = next(n for n in (5, 4, 2, 1) if ceiling % n == 0)
    gridlines = tuple(round(top + plot_h * k / steps, 2) for k in range(steps + 1))
    y_labels = tuple(
        Label(left - 4, round(top + plot_h * k / steps + 4, 2), str(ceiling * (steps - k) // steps))
        for k in range(steps + 1)
    )
    legend = tuple(
        LegendEntry(index % SERIES_CLASSES, name, sum(values))
        for index, (name, values) in enumerate(series)
    )
    return Chart(
        title=title,
        width=width,
        height=height,
        bars=tuple(bars),
        x_labels=x_labels,
        y_labels=y_labels,
        gridlines=gridlines,
        legend=legend,
        total=sum(totals),
    )
