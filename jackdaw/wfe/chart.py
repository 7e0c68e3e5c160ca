"""The status page's plot of issuances and failures per day, as SVG geometry: this computes the
bars, ticks and labels; templates/status/page.html draws them (no charting library, no script).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from jackdaw.ops.status import Day

WIDTH, HEIGHT = 1180, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 30
#: a label under every this many days (and under the last)
LABEL_EVERY = 5


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    #: "issued" or "failed" (the CSS class)
    kind: str
    #: the tooltip
    title: str


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: float
    top: float
    plot_width: float
    plot_height: float
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    issued: int
    failed: int

    @property
    def bottom(self) -> float:
        return self.top + self.plot_height


def nice_step(top: int, ticks: int = 4) -> int:
    """A step of 1, 2 or 5 times a power of ten giving at most ``ticks`` steps up to ``top``."""
    raw = max(top, 1) / ticks
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    for factor in (1, 2, 5, 10):
        step = max(1, int(factor * power))
        if step * ticks >= top:
            return step
    return int(10 * power)


def daily(days: Sequence[Day]) -> Chart:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = max((max(d.issued, d.failed) for d in days), default=0)
    step = nice_step(top)
    scale_top = max(step, math.ceil(top / step) * step)
    slot = plot_w / max(len(days), 1)
    bar_w = slot * 0.38

    def height(n: int) -> float:
        return plot_h * n / scale_top

    bars: list[Bar] = []
    x_ticks: list[Tick] = []
    for i, d in enumerate(days):
        x = LEFT + i * slot + slot * 0.1
        for offset, kind, n in ((0.0, "issued", d.issued), (bar_w, "failed", d.failed)):
            if n:
                h = height(n)
                bars.append(Bar(round(x + offset, 2), round(TOP + plot_h - h, 2), round(bar_w, 2), round(h, 2), kind,
                                f"{d.day}: {n} {kind}"))
        if i % LABEL_EVERY == 0 or i == len(days) - 1:
            x_ticks.append(Tick(round(LEFT + (i + 0.5) * slot, 2), d.day[5:]))
    y_ticks = [Tick(round(TOP + plot_h - height(v), 2), str(v)) for v in range(0, scale_top + 1, step)]
    return Chart(WIDTH, HEIGHT, LEFT, TOP, plot_w, plot_h, bars, y_ticks, x_ticks,
                 sum(d.issued for d in days), sum(d.failed for d in days))
