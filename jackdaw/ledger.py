"""Token buckets in the database: the upstream CA's rate limits, mirrored where every instance
sees the same count (Let's Encrypt computes its limits with token buckets too).

A limit holds ``capacity`` tokens and refills one every ``period / capacity`` seconds. A
bucket row per (limit, key) stores its tokens as last computed and when; the refill since then
is added on every read, so nothing ticks in the background. Rows are read ``FOR UPDATE``
(PostgreSQL) inside the caller's transaction (SQLite serializes every transaction), so two
requests on two instances can never both take the last token.

The arithmetic is pure (``refill``, ``wait_for``) so it can be checked on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, and_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from jackdaw.envparse import ConfigError
from jackdaw.models import BudgetBucket, utcnow

#: Core, not the ORM, on this path: an order's budget take is part of every newOrder
_BUCKETS: Table = BudgetBucket.__table__  # type: ignore[assignment]
_PERIOD = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Limit:
    name: str
    capacity: int
    #: seconds to refill from empty to full
    period: float

    @property
    def interval(self) -> float:
        """Seconds per token."""
        return self.period / self.capacity

    def describe(self) -> str:
        return f"{self.capacity} per {_human(self.period)}"


def parse_limit(name: str, text: str, key: str) -> Limit | None:
    """``N/period`` (``300/3h``, ``5/7d``, ``50/168h``), or ``off``/``0``; ConfigError names ``key``."""
    raw = text.strip().lower()
    if raw in ("off", "0", "none"):
        return None
    match = _PERIOD.match(raw)
    if not match or int(match.group(1)) < 1 or float(match.group(2)) <= 0:
        raise ConfigError(f"{key}: expected COUNT/PERIOD such as 300/3h or 5/7d (units s, m, h, d), or off; "
                          f"got {text!r}")
    return Limit(name, int(match.group(1)), float(match.group(2)) * _UNITS[match.group(3)])


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def refill(tokens: float, limit: Limit, elapsed: float) -> float:
    """Tokens after ``elapsed`` seconds of refill (never above capacity; a clock that went
    backwards refills nothing)."""
    return min(float(limit.capacity), tokens + max(0.0, elapsed) / limit.interval)


def wait_for(tokens: float, cost: float, floor: float, limit: Limit) -> float:
    """Seconds until ``cost`` tokens can be taken leaving at least ``floor``; 0 if now."""
    missing = cost + floor - tokens
    return 0.0 if missing <= 0 else missing * limit.interval


@dataclass(frozen=True)
class Want:
    """Take ``cost`` tokens from (limit, key), leaving at least ``floor`` (headroom kept for
    someone else, e.g. the relay's own certificate). ``cost`` 0 only checks."""

    limit: Limit
    key: str
    cost: float = 1.0
    floor: float = 0.0
    #: shown by `jackdaw budget` (a set key is a digest; its names are the label)
    label: str = ""


@dataclass(frozen=True)
class Shortfall:
    want: Want
    #: seconds until the bucket holds enough
    retry_after: float


def now_of(s: Session) -> datetime:
    """The database's clock on PostgreSQL (instances agree), this host's on SQLite."""
    if s.get_bind().dialect.name == "postgresql":
        now = s.scalar(select(func.now()))
        assert isinstance(now, datetime)
        return now
    return utcnow()


@dataclass
class _Bucket:
    """A bucket row as read (tokens as last stored, and when), to be written back by `_store`."""

    tokens: float
    updated: datetime


def _rows(s: Session, wants: Sequence[Want], now: datetime) -> dict[tuple[str, str], _Bucket]:
    """The wanted buckets, created full where missing, locked for this transaction.

    One INSERT and one SELECT whatever the number of buckets (an order wants four or more, and
    newOrder is a hot path): statements, not rows, are what a request pays for.
    """
    dialect = s.get_bind().dialect.name
    labels = {(w.limit.name, w.key): (w.limit, w.label) for w in wants}
    keys = sorted(labels)  # one lock order: no deadlocks
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_BUCKETS)
    # an executemany, not a multi-row VALUES: SQLAlchemy caches the compiled statement of the
    # former, and compiled a fresh one per request for the latter
    s.execute(ins.on_conflict_do_nothing(index_elements=["limit", "key"]),
              [{"limit": name, "key": key, "tokens": float(labels[(name, key)][0].capacity), "updated": now,
                "label": labels[(name, key)][1][:255] or None} for name, key in keys])
    t = _BUCKETS.c
    q = (select(t.limit, t.key, t.tokens, t.updated)
         .where(or_(*(and_(t.limit == name, t.key == key) for name, key in keys)))
         .order_by(t.limit, t.key))
    if dialect == "postgresql":
        q = q.with_for_update()
    found = {(name, key): _Bucket(tokens, updated) for name, key, tokens, updated in s.execute(q)}
    assert len(found) == len(keys), "every wanted bucket exists after the INSERT"
    return found


def _store(s: Session, rows: dict[tuple[str, str], _Bucket]) -> None:
    """Write the buckets back in one executemany."""
    t = _BUCKETS.c
    stmt = (update(_BUCKETS)
            .where(t.limit == bindparam("b_limit"), t.key == bindparam("b_key"))
            .values(tokens=bindparam("b_tokens"), updated=bindparam("b_updated")))
    s.execute(stmt, [{"b_limit": name, "b_key": key, "b_tokens": row.tokens, "b_updated": row.updated}
                     for (name, key), row in rows.items()])


def take(s: Session, wants: Sequence[Want]) -> Shortfall | None:
    """Take every want, or none of them: the first shortfall (the longest wait) is returned and
    nothing is spent."""
    if not wants:
        return None
    now = now_of(s)
    rows = _rows(s, wants, now)
    current = {k: refill(r.tokens, _limit_of(wants, k), (now - r.updated).total_seconds()) for k, r in rows.items()}
    needed: dict[tuple[str, str], float] = {}
    short: list[Shortfall] = []
    for want in wants:
        k = (want.limit.name, want.key)
        needed[k] = needed.get(k, 0.0) + want.cost
        wait = wait_for(current[k], needed[k], want.floor, want.limit)
        if wait > 0:
            short.append(Shortfall(want, wait))
    if short:
        return max(short, key=lambda x: x.retry_after)
    _store(s, {k: _Bucket(current[k] - needed[k], now) for k in rows})
    return None


def give_back(s: Session, wants: Iterable[Want]) -> None:
    """Return tokens taken for work that never reached the upstream CA."""
    wants = list(wants)
    if not wants:
        return
    now = now_of(s)
    rows = _rows(s, wants, now)
    for want in wants:
        row = rows[(want.limit.name, want.key)]
        row.tokens = min(float(want.limit.capacity),
                         refill(row.tokens, want.limit, (now - row.updated).total_seconds()) + want.cost)
        row.updated = now
    _store(s, rows)


def empty_until(s: Session, want: Want, when: datetime) -> None:
    """The CA said this bucket is spent until ``when``: hold it empty until then."""
    now = now_of(s)
    rows = _rows(s, [want], now)
    row = rows[(want.limit.name, want.key)]
    wait = max(0.0, (when - now).total_seconds())
    row.tokens = min(refill(row.tokens, want.limit, (now - row.updated).total_seconds()),
                     want.cost - wait / want.limit.interval)
    row.updated = now
    _store(s, rows)


def level(row: BudgetBucket, limit: Limit, now: datetime) -> float:
    """A bucket's tokens now (read-only, for metrics and the CLI)."""
    return refill(row.tokens, limit, (now - row.updated).total_seconds())


def _limit_of(wants: Sequence[Want], key: tuple[str, str]) -> Limit:
    return next(w.limit for w in wants if (w.limit.name, w.key) == key)
