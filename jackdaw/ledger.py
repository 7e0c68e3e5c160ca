"""Token buckets in the database: the upstream CA's rate limits, mirrored where every instance
sees the same count (Let's Encrypt computes its limits with token buckets too).

A limit holds ``capacity`` tokens and refills one every ``period / capacity`` seconds. A
bucket row per (limit, key) stores its tokens as last computed and when; the refill since then
is added on every read, so nothing ticks in the background. Rows are claimed (created where
missing, and locked on PostgreSQL as ``FOR UPDATE`` would; SQLite serializes every write
transaction) inside the caller's transaction, so two requests on two instances can never both
take the last token.

The arithmetic is pure (``refill``, ``wait_for``) so it can be checked on its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Insert, Table, bindparam, func, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from jackdaw import durations
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
        return f"{self.capacity} per {durations.human(self.period)}"


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


def _claim_statement(dialect: str) -> Insert:
    """Create the wanted buckets full where missing and return every one of them, locked.

    ON CONFLICT DO UPDATE with a no-op SET is what returns an existing row too (DO NOTHING
    returns only the rows it inserted) and, on PostgreSQL, locks it as FOR UPDATE would. Built
    once per dialect: building the statement per request cost as much as running it."""
    t = _BUCKETS.c
    if dialect == "postgresql":  # the database's clock, read by the same statement
        ins = postgresql.insert(_BUCKETS).values(updated=func.now())
        return (ins.on_conflict_do_update(index_elements=[t.limit, t.key], set_={"tokens": t.tokens})
                .returning(t.limit, t.key, t.tokens, t.updated, func.now()))
    lite = sqlite.insert(_BUCKETS)
    return (lite.on_conflict_do_update(index_elements=[t.limit, t.key], set_={"tokens": t.tokens})
            .returning(t.limit, t.key, t.tokens, t.updated, literal_column("NULL")))


_CLAIM = {dialect: _claim_statement(dialect) for dialect in ("postgresql", "sqlite")}
_STORE = (update(_BUCKETS)
          .where(_BUCKETS.c.limit == bindparam("b_limit"), _BUCKETS.c.key == bindparam("b_key"))
          .values(tokens=bindparam("b_tokens"), updated=bindparam("b_updated")))


def _rows(s: Session, wants: Sequence[Want]) -> tuple[dict[tuple[str, str], _Bucket], datetime]:
    """The wanted buckets (created full where missing, locked for this transaction) and "now"
    on the database's clock (PostgreSQL's, or this host's for an SQLite file).

    One statement whatever the number of buckets (an order wants four or more, and newOrder is
    a hot path): statements, not rows, are what a request pays for. Keys go in one sorted order,
    so two transactions lock shared buckets in the same order (no deadlocks).
    """
    dialect = s.get_bind().dialect.name
    labels = {(w.limit.name, w.key): (w.limit, w.label) for w in wants}
    host_now = utcnow()
    params = [{"limit": name, "key": key, "tokens": float(labels[(name, key)][0].capacity),
               "label": labels[(name, key)][1][:255] or None,
               **({} if dialect == "postgresql" else {"updated": host_now})} for name, key in sorted(labels)]
    found: dict[tuple[str, str], _Bucket] = {}
    now = host_now
    for name, key, tokens, updated, db_now in s.execute(_CLAIM[dialect], params):
        found[(name, key)] = _Bucket(tokens, updated)
        now = db_now or host_now
    assert len(found) == len(labels), "every wanted bucket is returned by the upsert"
    return found, now


def _store(s: Session, rows: dict[tuple[str, str], _Bucket]) -> None:
    """Write the buckets back in one executemany."""
    s.execute(_STORE, [{"b_limit": name, "b_key": key, "b_tokens": row.tokens, "b_updated": row.updated}
                       for (name, key), row in rows.items()])


def take(s: Session, wants: Sequence[Want]) -> Shortfall | None:
    """Take every want, or none of them: the first shortfall (the longest wait) is returned and
    nothing is spent."""
    if not wants:
        return None
    rows, now = _rows(s, wants)
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
    rows, now = _rows(s, wants)
    for want in wants:
        row = rows[(want.limit.name, want.key)]
        row.tokens = min(float(want.limit.capacity),
                         refill(row.tokens, want.limit, (now - row.updated).total_seconds()) + want.cost)
        row.updated = now
    _store(s, rows)


def empty_until(s: Session, want: Want, when: datetime) -> None:
    """The CA said this bucket is spent until ``when``: hold it empty until then."""
    rows, now = _rows(s, [want])
    row = rows[(want.limit.name, want.key)]
    wait = max(0.0, (when - now).total_seconds())
    row.tokens = min(refill(row.tokens, want.limit, (now - row.updated).total_seconds()),
                     want.cost - wait / want.limit.interval)
    row.updated = now
    _store(s, rows)


def whole(tokens: float) -> int:
    """Tokens as spendable: whole ones (a fraction buys nothing), never below zero."""
    return max(0, math.floor(tokens + 1e-9))


def level(row: BudgetBucket, limit: Limit, now: datetime) -> float:
    """A bucket's tokens now (read-only, for metrics and the CLI)."""
    return refill(row.tokens, limit, (now - row.updated).total_seconds())


def _limit_of(wants: Sequence[Want], key: tuple[str, str]) -> Limit:
    return next(w.limit for w in wants if (w.limit.name, w.key) == key)
