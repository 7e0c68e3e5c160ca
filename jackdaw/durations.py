"""Spans of time as people read them: ``42s``, ``3h 22m``, ``1d 9h``.

The one formatter for every duration an operator or a client reads (budget refusals, `jackdaw
budget`, `jackdaw status`, the status page, notifications); machine fields (Retry-After, JSON)
stay in seconds.
"""

from __future__ import annotations

import math

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def _precision(seconds: int) -> int:
    """Two units are shown, so a span is rounded to the smaller one: hours from a day up,
    minutes from an hour up, seconds below."""
    return 3600 if seconds >= 86400 else 60 if seconds >= 3600 else 1


def human(seconds: float) -> str:
    """``seconds`` rounded up (a wait told is never too short) to its two largest units."""
    total = max(0, math.ceil(seconds - 1e-9))
    for _ in range(2):  # rounding up can cross into the next unit (86399 s is 1d, not 24h)
        step = _precision(total)
        total = math.ceil(total / step) * step
    parts: list[str] = []
    for unit, size in _UNITS:
        count, total = divmod(total, size)
        if count or parts:
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    parts = [p for p in parts if not p.startswith("0")] or ["0s"]
    return " ".join(parts)
