"""Pure pieces of the status page: the token check, STATUS_TOKEN, the plot's geometry, the text."""

from __future__ import annotations

import pytest

from jackdaw.envparse import ConfigError
from jackdaw.ops.render import sparkline
from jackdaw.ops.status import Day
from jackdaw.settings import Settings
from jackdaw.wfe.chart import daily, nice_step
from jackdaw.wfe.status import bearer_token_matches

REQUIRED = {"RELAY_DOMAIN": "relay.example.com", "ACME_EMAIL": "ops@example.com", "DNS_PROVIDER": "rfc2136"}
TOKEN = "0123456789abcdef0123"


@pytest.mark.parametrize(("header", "token", "ok"), [
    (f"Bearer {TOKEN}", TOKEN, True),
    (f"bearer {TOKEN}", TOKEN, True),
    (f"  Bearer   {TOKEN}  ", TOKEN, True),
    (f"Bearer {TOKEN}", None, False),
    ("Bearer ", None, False),
    ("", TOKEN, False),
    (TOKEN, TOKEN, False),
    (f"Basic {TOKEN}", TOKEN, False),
    (f"Bearer {TOKEN[:-1]}", TOKEN, False),
    (f"Bearer {TOKEN}0", TOKEN, False),
    ("Bearer é", TOKEN, False),  # not ASCII: compared as bytes, no TypeError
])
def test_bearer_token(header: str, token: str | None, ok: bool) -> None:
    assert bearer_token_matches(header, token) is ok


def test_status_token_setting() -> None:
    assert Settings.parse(REQUIRED).status_token is None
    assert Settings.parse({**REQUIRED, "STATUS_TOKEN": " "}).status_token is None
    assert Settings.parse({**REQUIRED, "STATUS_TOKEN": f" {TOKEN} "}).status_token == TOKEN
    assert TOKEN not in repr(Settings.parse({**REQUIRED, "STATUS_TOKEN": TOKEN}))
    for bad in ("short", "0123456789abcde", "0123456789 abcdef0123"):
        with pytest.raises(ConfigError, match=r"^STATUS_TOKEN: "):
            Settings.parse({**REQUIRED, "STATUS_TOKEN": bad})


@pytest.mark.parametrize(("top", "step"), [(0, 1), (1, 1), (4, 1), (5, 2), (8, 2), (9, 5), (20, 5), (21, 10),
                                           (100, 50), (1234, 500)])
def test_nice_steps(top: int, step: int) -> None:
    assert nice_step(top) == step


def test_the_plot_scales_to_the_busiest_day() -> None:
    days = [Day(f"2026-11-{d:02}", issued, failed) for d, issued, failed in [(1, 0, 0), (2, 4, 1), (3, 8, 0)]]
    chart = daily(days)
    issued = [b for b in chart.bars if b.kind == "issued"]
    failed = [b for b in chart.bars if b.kind == "failed"]
    assert [b.title for b in issued] == ["2026-11-02: 4 issued", "2026-11-03: 8 issued"]
    assert [b.title for b in failed] == ["2026-11-02: 1 failed"]
    assert issued[1].height == pytest.approx(chart.plot_height)  # 8 of an 8-high scale
    assert issued[0].height == pytest.approx(chart.plot_height / 2)
    assert all(b.y + b.height == pytest.approx(chart.bottom) for b in chart.bars), "bars stand on the axis"
    assert all(chart.left <= b.x and b.x + b.width <= chart.left + chart.plot_width for b in chart.bars)
    assert [t.label for t in chart.y_ticks] == ["0", "2", "4", "6", "8"]
    assert [t.label for t in chart.x_ticks] == ["11-01", "11-03"]
    assert (chart.issued, chart.failed) == (12, 1)


def test_an_empty_plot_has_an_axis_and_no_bars() -> None:
    chart = daily([Day(f"2026-11-{d:02}", 0, 0) for d in range(1, 31)])
    assert chart.bars == [] and [t.label for t in chart.y_ticks] == ["0", "1"]
    assert [t.label for t in chart.x_ticks] == ["11-01", "11-06", "11-11", "11-16", "11-21", "11-26", "11-30"]


def test_terminal_pieces() -> None:
    assert sparkline([0, 0]) == "··"
    assert sparkline([0, 1, 8]) == "·▁█"
