"""Durations as people read them (jackdaw.durations): two units, rounded up."""

from __future__ import annotations

import pytest

from jackdaw.durations import human


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0, "0s", id="none"),
        pytest.param(-5, "0s", id="past"),
        pytest.param(0.2, "1s", id="a-fraction-waits-a-second"),
        pytest.param(42, "42s", id="seconds"),
        pytest.param(90, "1m 30s", id="minutes-and-seconds"),
        pytest.param(3600, "1h", id="an-hour"),
        pytest.param(12085, "3h 22m", id="rounded-up-to-the-minute"),
        pytest.param(86399, "1d", id="rounding-up-crosses-into-days"),
        pytest.param(120925, "1d 10h", id="rounded-up-to-the-hour"),
        pytest.param(7 * 86400, "7d", id="a-week"),
        pytest.param(3 * 3600, "3h", id="three-hours"),
    ],
)
def test_two_units_rounded_up(seconds: float, text: str) -> None:
    assert human(seconds) == text
