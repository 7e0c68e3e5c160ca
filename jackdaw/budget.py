"""The upstream budget: the relay's one upstream account, spent by no client beyond its share.

Which of the CA's limits a certificate spends (Let's Encrypt's numbers by default, settings
``BUDGET_*``), mirrored in the ledger (jackdaw.ledger) that every instance shares:

- ``new-orders``: new orders per account (300 per 3 h);
- ``certs-per-domain``: certificates per registered domain (50 per 7 days; the Public Suffix
  List decides what is registered);
- ``certs-per-set``: certificates per exact set of names (5 per 7 days);
- ``failed-authz``: failed validations per name (5 per hour; only checked before an order,
  spent when the CA fails one);
- ``client-orders``: an EAB key's own quota (``--orders-per-hour``).

Renewals, as the CA tells them apart (Boulder's WFE at newOrder, its RA at issuance): an order
for the exact set of names of a certificate issued in the last 120 days (an ``IssuedSet``:
client orders and the relay's own certificate, ARI or not) is exempt from ``new-orders`` and
``certs-per-domain`` and takes a ``certs-per-set`` token only; an ARI renewal (``replaces``
accepted) is exempt from every limit, and its certificate spends, where tokens are left, what
the CA spends at issuance (``certs-per-set``, and ``certs-per-domain`` for a new set).

A client's newOrder takes its tokens at once (``admit``), before anything goes upstream; a
refusal is ``rateLimited`` with the refill time as ``Retry-After``. Client orders leave
``BUDGET_RELAY_RESERVE`` tokens of the account-wide and the relay domain's limits for the
relay's own certificate. Tokens held by an order that is not finalized within ``HOLD`` (or
that fails before going upstream) are given back by ``settle``, a periodic sweep; a late
finalize takes them again. Names the CA paused for the account are refused outright until the
operator unpauses them (``jackdaw budget unpause``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from publicsuffixlist import PublicSuffixList
from sqlalchemy import Insert, Table, bindparam, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from jackdaw import ledger, metrics
from jackdaw.db import rowcount
from jackdaw.durations import human
from jackdaw.jobs import JobKind
from jackdaw.ledger import Limit, Want
from jackdaw.models import EabKey, IssuedSet, Order, UpstreamOrder, UpstreamPause, utcnow
from jackdaw.protocol import problems
from jackdaw.protocol.constants import Status
from jackdaw.settings import Settings

log = logging.getLogger(__name__)

#: a reservation not finalized within this long is given back (a late finalize takes it again)
HOLD = timedelta(hours=1)
#: orders settled per sweep
SETTLE_BATCH = 200
#: an exact set issued within this long is a renewal (Boulder: FQDNSetTimestampsForWindow, 120 days)
RENEWAL_WINDOW = timedelta(days=120)
#: Boulder's refusal for a paused account (wfe2: "Your account is temporarily prevented from
#: requesting certificates for a.example, b.example and possibly others. Please visit: <url>")
_PAUSED = re.compile(r"temporarily prevented from requesting certificates for (?P<names>.+?) and possibly "
                     r"others\.?\s*Please visit:?\s*(?P<url>\S+)", re.IGNORECASE | re.DOTALL)


#: built once, on the table (Core): newOrder asks this every time, and building it, or the ORM's
#: handling of a query of mapped columns, cost as much as running it
_PAUSES: Table = UpstreamPause.__table__  # type: ignore[assignment]
_PAUSED_AMONG = select(_PAUSES.c.name).where(_PAUSES.c.name.in_(bindparam("names", expanding=True)))
_ISSUED: Table = IssuedSet.__table__  # type: ignore[assignment]
#: one primary-key read: whether a set is a renewal costs the same at a million certificates
_ISSUED_AT = select(_ISSUED.c.issued).where(_ISSUED.c.set_key == bindparam("key"))


def _issued_statement(dialect: str) -> Insert:
    """Record a set as issued now (a later issuance moves its time)."""
    ins: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_ISSUED)
    upsert: Insert = ins.on_conflict_do_update(index_elements=[_ISSUED.c.set_key],
                                               set_={"issued": ins.excluded.issued})
    return upsert


_RECORD_ISSUED = {dialect: _issued_statement(dialect) for dialect in ("postgresql", "sqlite")}


class Reservation:
    HELD = "held"  # taken at newOrder, not finalized yet
    SPENT = "spent"  # finalized: leg 2 went (or goes) upstream
    RELEASED = "released"  # given back unfinalized; a late finalize takes it again
    SETTLED = "settled"  # final: nothing more to give back


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def registered_domain(name: str) -> str:
    """``www.example.co.uk`` -> ``example.co.uk``; a name that is itself a public suffix (or
    has an unknown TLD) counts as its own registered domain."""
    name = name.removeprefix("*.")
    return str(_psl().privatesuffix(name) or name)


def set_key(names: list[str]) -> str:
    return "sha256:" + hashlib.sha256(",".join(sorted(set(names))).encode()).hexdigest()[:40]


#: an EAB key's own quota (--orders-per-hour)
CLIENT_ORDERS, CLIENT_ORDERS_PERIOD = "client-orders", 3600.0


def client_limit(binding: EabKey) -> Limit | None:
    n = binding.orders_per_hour
    return Limit(CLIENT_ORDERS, n, CLIENT_ORDERS_PERIOD) if n else None


@dataclass
class Budget:
    settings: Settings

    @property
    def enabled(self) -> bool:
        return self.settings.budget_enabled

    def limits(self) -> list[Limit]:
        s = self.settings
        return [lim for lim in (s.budget_new_orders, s.budget_certs_per_domain, s.budget_certs_per_set,
                                s.budget_failed_authz) if lim is not None]

    def bucket_periods(self) -> dict[str, float]:
        """Every limit's bucket name and refill period (for retention)."""
        return {**{lim.name: lim.period for lim in self.limits()}, CLIENT_ORDERS: CLIENT_ORDERS_PERIOD}

    def certificate_wants(self, names: list[str], *, relay: bool = False, renewal: bool = False) -> list[Want]:
        """What one certificate for ``names`` spends upstream (an order, the certificate); a
        renewal (see ``renews``) spends a certs-per-set token only."""
        s = self.settings
        reserve = 0 if relay else s.budget_relay_reserve
        relay_domain = registered_domain(s.relay_domain)
        wants: list[Want] = []
        if s.budget_new_orders and not renewal:
            wants.append(Want(s.budget_new_orders, s.le_directory, 1, reserve, "the relay's upstream account"))
        if s.budget_certs_per_domain and not renewal:
            for domain in sorted({registered_domain(n) for n in names}):
                wants.append(Want(s.budget_certs_per_domain, domain, 1, reserve if domain == relay_domain else 0,
                                  domain))
        if s.budget_certs_per_set:
            wants.append(Want(s.budget_certs_per_set, set_key(names), 1, 0, ", ".join(sorted(set(names)))))
        return wants

    def order_wants(self, order: Order) -> list[Want]:
        """What an order's reservation holds: nothing for an ARI renewal (exempt from every limit)."""
        return [] if order.replaces else self.certificate_wants(order.identifiers, renewal=order.renewal)

    def renews(self, s: Session, names: list[str]) -> bool:
        """Whether the CA counts a certificate for ``names`` as a renewal: their exact set was
        issued through the relay's account within ``RENEWAL_WINDOW``."""
        if not self.enabled:
            return False
        issued = s.connection().scalar(_ISSUED_AT, {"key": set_key(names)})
        return issued is not None and issued >= utcnow() - RENEWAL_WINDOW

    def _failure_checks(self, names: list[str]) -> list[Want]:
        lim = self.settings.budget_failed_authz
        return [Want(lim, n.removeprefix("*."), 0, 1, n.removeprefix("*.")) for n in sorted(set(names))] if lim else []

    # -- a client's order ------------------------------------------------------------------

    def held(self) -> str | None:
        """A new order's reservation, written with its INSERT (``admit`` then takes the tokens)."""
        return Reservation.HELD if self.enabled else None

    def admit(self, s: Session, order: Order, binding: EabKey | None) -> None:
        """At newOrder, in its transaction, after ``held`` and ``renews`` went into the order's
        INSERT: take the order's tokens or refuse it (429, and the request's rollback takes the
        order back). Last, because on PostgreSQL the bucket rows stay locked until the commit,
        and every order of an account (or a registered domain) takes the same rows."""
        if not self.enabled:
            return
        self._refuse_paused(s, order.identifiers)
        # an ARI renewal (replaces) is exempt from the CA's limits, failed validations included;
        # a key's own quota still counts
        wants = [] if order.replaces else [*self.order_wants(order), *self._failure_checks(order.identifiers)]
        quota = client_limit(binding) if binding is not None else None
        if quota is not None and binding is not None:
            wants.append(Want(quota, binding.kid, 1, 0, f"EAB key {binding.name}"))
        self._take(s, wants)

    def commit(self, s: Session, order: Order) -> None:
        """At finalize: the order goes upstream now; a reservation given back is taken again."""
        if not self.enabled or order.budget is None:
            return
        if order.budget == Reservation.RELEASED:
            self._refuse_paused(s, order.identifiers)
            if not order.replaces:  # a renewal now (or no longer) as the CA will judge it in a moment
                order.renewal = self.renews(s, order.identifiers)
                self._take(s, [*self.order_wants(order), *self._failure_checks(order.identifiers)])
        order.budget = Reservation.SPENT

    def _take(self, s: Session, wants: list[Want]) -> None:
        short = ledger.take(s, wants)
        if short is None:
            return
        metrics.BUDGET_REFUSALS.labels(reason=short.want.limit.name).inc()
        retry = max(1, math.ceil(short.retry_after))
        raise problems.RateLimited(
            f"upstream budget: {short.want.limit.name} ({short.want.limit.describe()}) for {short.want.label} "
            f"is spent; try again in {human(retry)}", retry_after=retry)

    def _refuse_paused(self, s: Session, names: list[str]) -> None:
        bases = {n.removeprefix("*.") for n in names}
        paused = s.connection().scalars(_PAUSED_AMONG, {"names": sorted(bases)}).all()
        if paused:
            metrics.BUDGET_REFUSALS.labels(reason="paused").inc()
            raise problems.RateLimited(
                f"the upstream CA has paused issuance for {', '.join(sorted(paused))} for the relay's account "
                "after repeated failures; the relay's operator must unpause it", retry_after=3600)

    # -- the relay's own certificate, and what the CA reports ------------------------------

    def spend_for_relay(self, s: Session, names: list[str]) -> problems.AcmeProblem | None:
        """The relay certificate's renewal may use the reserve; a shortfall is returned, not raised."""
        if not self.enabled:
            return None
        short = ledger.take(s, self.certificate_wants(names, relay=True, renewal=self.renews(s, names)))
        if short is None:
            return None
        return problems.RateLimited(f"upstream budget: {short.want.limit.name} for {short.want.label} is spent",
                                    retry_after=max(1, math.ceil(short.retry_after)))

    def issued(self, s: Session, names: list[str], *, ari: bool) -> None:
        """The CA issued a certificate for ``names`` (in the transaction that stores it): the set
        is a renewal from now on. An ARI renewal took nothing at newOrder; its certificate spends
        what the CA spends at issuance, best effort as the CA's own spend (an empty bucket stays
        empty, the certificate is issued). Recorded with the ledger off too: switched on, it knows."""
        if ari and self.enabled:
            renewal = self.renews(s, names)
            for want in self.certificate_wants(names, relay=True, renewal=renewal):
                if want.limit.name != "new-orders":  # spent (or exempt) at the CA's newOrder
                    ledger.take(s, [want])
        s.execute(_RECORD_ISSUED[s.get_bind().dialect.name], {"set_key": set_key(names), "issued": utcnow()})

    def failed_upstream(self, s: Session, names: list[str]) -> None:
        """The CA failed a validation of each of ``names``."""
        lim = self.settings.budget_failed_authz
        if self.enabled and lim is not None:
            for name in sorted({n.removeprefix("*.") for n in names}):
                ledger.take(s, [Want(lim, name, 1, 0, name)])  # an empty bucket stays empty

    def rate_limited(self, s: Session, names: list[str], detail: str, until: datetime) -> None:
        """The CA refused with rateLimited until ``until``: hold the limit its detail names
        empty until then (the exact set when it names none we know)."""
        if not self.enabled:
            return
        wants = {w.limit.name: w for w in self.certificate_wants(names, relay=True)}
        text = detail.lower()
        name = ("new-orders" if "new-orders-per-account" in text or "new orders" in text else
                "certs-per-domain" if "registered-domain" in text or "registered domain" in text else
                "certs-per-set")
        want = wants.get(name) or wants.get("certs-per-set")
        if want is not None:
            ledger.empty_until(s, want, until)

    def paused(self, s: Session, detail: str) -> list[str]:
        """Record the names the CA's pause refusal names; [] if ``detail`` is no pause."""
        match = _PAUSED.search(detail)
        if match is None:
            return []
        names = sorted({n.strip().lower() for n in match.group("names").split(",") if n.strip()})
        url = match.group("url").rstrip(".")
        for name in names:
            if s.get(UpstreamPause, name) is None:
                s.add(UpstreamPause(name=name, unpause_url=url))
        log.error("the upstream CA paused issuance for %s for the relay's account: unpause at %s, then run "
                  "`jackdaw budget unpause %s`", ", ".join(names), url, " ".join(names))
        return names

    @staticmethod
    def unpause(s: Session, names: list[str]) -> int:
        """The operator unpaused these names at the CA: stop refusing them here."""
        return rowcount(s.execute(delete(UpstreamPause).where(UpstreamPause.name.in_(names))))

    # -- the sweep -------------------------------------------------------------------------

    def settle(self, s: Session) -> int:
        """Give back what orders hold without going upstream; returns the orders settled."""
        if not self.enabled:
            return 0
        now = utcnow()
        q = select(Order).where(or_(
            (Order.budget == Reservation.HELD) & (
                Order.status.in_((Status.VALID, Status.INVALID)) | (Order.created < now - HOLD)),
            (Order.budget.in_((Reservation.SPENT, Reservation.RELEASED)))
            & Order.status.in_((Status.VALID, Status.INVALID)))).limit(SETTLE_BATCH)
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        settled = 0
        for order in s.scalars(q):
            final = order.status in (Status.VALID, Status.INVALID)
            if order.budget == Reservation.HELD:
                ledger.give_back(s, self.order_wants(order))
                order.budget = Reservation.SETTLED if final else Reservation.RELEASED
            elif order.budget == Reservation.SPENT:
                if order.status == Status.INVALID and not order.replaces:
                    leg2 = s.scalars(select(UpstreamOrder).where(UpstreamOrder.owner_kind == JobKind.ORDER,
                                                                 UpstreamOrder.owner_id == order.id)).first()
                    reached = leg2 is not None and leg2.url is not None
                    # not issued: the certificate's tokens come back; the CA spent its newOrder's
                    ledger.give_back(s, [w for w in self.order_wants(order)
                                         if not (reached and w.limit.name == "new-orders")])
                order.budget = Reservation.SETTLED
            else:  # released and now final: nothing held
                order.budget = Reservation.SETTLED
            settled += 1
        return settled


def settle_budget(sessions: sessionmaker[Session], budget: Budget) -> int:
    """The periodic sweep: settle orders in batches until none is left."""
    total = 0
    while True:
        with sessions.begin() as s:
            n = budget.settle(s)
        total += n
        if n < SETTLE_BATCH:
            return total
