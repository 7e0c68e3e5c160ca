"""Every Prometheus metric Jackdaw exposes, and the scrape that renders them (`GET /metrics`).

Two kinds:

- Counters and histograms of what this process did (validations, upstream errors, DNS
  provider calls, propagation waits, time to certificate). They live in this process; with
  several gunicorn workers set ``PROMETHEUS_MULTIPROC_DIR`` to an empty directory of its own
  and prometheus-client's multiprocess mode sums every worker's files at scrape time
  (gunicorn.conf.py empties the directory when gunicorn starts). Without it each worker
  reports only its own counts, which is exact with the default single worker.
- Gauges read from the database at scrape time (orders and authorizations by status, job
  queue depth and oldest job age): one GROUP BY query each, global whatever the number of
  workers or instances. So is each current certificate's expiry (cert-manager's
  ``certmanager_certificate_expiration_timestamp_seconds`` convention), the relay's own
  certificate included: computed at scrape time, it needs no job and is right on every instance.

Counters exist with 0 from the start for every label value known in advance (``initialise``),
so ``rate()`` and ``increase()`` see the first failure; no ``_created`` series.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from jackdaw import __version__, inventory
from jackdaw.ledger import Limit, refill
from jackdaw.models import Authz, BudgetBucket, Job, Order, UpstreamPause, utcnow
from jackdaw.protocol.constants import Status

if TYPE_CHECKING:
    from jackdaw.relaycert.files import CertStatus

log = logging.getLogger(__name__)

# `foo_created` doubles every counter's series and no dashboard or alert here reads it
disable_created_metrics()

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

ORDER_STATUSES = (Status.PENDING, Status.READY, Status.PROCESSING, Status.VALID, Status.INVALID)
AUTHZ_STATUSES = (Status.PENDING, Status.VALID, Status.INVALID, Status.DEACTIVATED, Status.EXPIRED,
                  Status.REVOKED)

#: at most this many certificate expiry series per scrape, soonest expiry first (a name set is
#: one series; the rest are counted in jackdaw_certificates_current)
CERTIFICATE_SERIES_CAP = 500

#: this process's own counters and histograms (plus process_* and python_info)
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

VALIDATIONS = Counter(
    "jackdaw_validations", "HTTP-01 validations run by the relay, by outcome: 'valid' or the ACME problem type",
    ["outcome"], registry=REGISTRY,
)
TIME_TO_CERTIFICATE = Histogram(
    "jackdaw_time_to_certificate_seconds", "Seconds from a client's new order to its certificate being stored",
    buckets=(5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 6 * 3600, 24 * 3600), registry=REGISTRY,
)
UPSTREAM_ERRORS = Counter(
    "jackdaw_upstream_errors",
    "Errors of leg 2 (the upstream CA), by type: the ACME problem type the CA sent, or 'timeout', "
    "'connection', 'http' for transport failures",
    ["type"], registry=REGISTRY,
)
DNS_PROVIDER_SECONDS = Histogram(
    "jackdaw_dns_provider_seconds", "Duration of DNS provider calls (TXT present / cleanup), failed ones included",
    ["provider", "op"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=REGISTRY,
)
DNS_PROVIDER_FAILURES = Counter(
    "jackdaw_dns_provider_failures", "DNS provider calls that raised", ["provider", "op"], registry=REGISTRY,
)
JOB_RUNS = Counter(
    "jackdaw_job_runs", "Job runs (one bounded step each) by kind and outcome: 'done', 'wait' (progress, "
    "runs again later), 'retry' (failed, retried), 'gave_up', 'lost' (its claim was taken over)",
    ["kind", "outcome"], registry=REGISTRY,
)
JOB_RUN_SECONDS = Histogram(
    "jackdaw_job_run_seconds", "Duration of one job run (one bounded step)", ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=REGISTRY,
)
BUDGET_REFUSALS = Counter(
    "jackdaw_budget_refusals", "Orders refused by the upstream budget before anything went upstream, by "
    "reason: the limit that was spent, or 'paused'", ["reason"], registry=REGISTRY,
)
PRUNED_ROWS = Counter(
    "jackdaw_pruned_rows", "Rows deleted by retention (RETENTION_DAYS, RETENTION_CERT_MARGIN_DAYS), by table",
    ["table"], registry=REGISTRY,
)
RELAY_CERT_FAILURES = Counter(
    "jackdaw_relay_cert_failures", "Failed attempts to obtain or renew the relay's own certificate (retried)",
    registry=REGISTRY,
)
RELAY_CERT_RENEWALS = Counter(
    "jackdaw_relay_cert_renewals", "Certificates for RELAY_DOMAIN obtained and installed", registry=REGISTRY,
)
DNS_PROPAGATION_SECONDS = Histogram(
    "jackdaw_dns_propagation_seconds",
    "Seconds from asking until every authoritative server served an order's TXT values (outcome "
    "'propagated' or 'timeout'); DNS_PROPAGATION_WAIT and provider settle time excluded",
    ["outcome"], buckets=(0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600), registry=REGISTRY,
)


#: label values known before anything happened, so their counters start at 0
VALIDATION_OUTCOMES = ("valid", "connection", "dns", "unauthorized", "incorrectResponse", "rejectedIdentifier",
                       "serverInternal")
UPSTREAM_ERROR_TYPES = ("timeout", "connection", "http", "rateLimited", "serverInternal", "unauthorized", "caa",
                        "rejectedIdentifier", "badCSR", "dns")
JOB_OUTCOMES = ("done", "wait", "retry", "gave_up", "lost")
PRUNED_TABLES = ("nonces", "certificates", "orders", "budget_buckets", "issued_sets")
DNS_OPS = ("present", "cleanup")


def initialise(job_kinds: Sequence[str], provider: str, limits: Sequence[Limit] = ()) -> None:
    """Create every counter's known label sets at 0 (an idempotent no-op once they exist)."""
    for outcome in VALIDATION_OUTCOMES:
        VALIDATIONS.labels(outcome=outcome)
    for kind in UPSTREAM_ERROR_TYPES:
        UPSTREAM_ERRORS.labels(type=kind)
    for job_kind in job_kinds:
        JOB_RUN_SECONDS.labels(kind=job_kind)
        for outcome in JOB_OUTCOMES:
            JOB_RUNS.labels(kind=job_kind, outcome=outcome)
    for op in DNS_OPS:
        DNS_PROVIDER_SECONDS.labels(provider=provider, op=op)
        DNS_PROVIDER_FAILURES.labels(provider=provider, op=op)
    for reason in (*(lim.name for lim in limits), "paused"):
        BUDGET_REFUSALS.labels(reason=reason)
    for table in PRUNED_TABLES:
        PRUNED_ROWS.labels(table=table)
    for outcome in ("propagated", "timeout"):
        DNS_PROPAGATION_SECONDS.labels(outcome=outcome)


@contextmanager
def dns_provider_call(provider: str, op: str) -> Iterator[None]:
    """Time one provider call; count it as a failure if it raises."""
    started = time.monotonic()
    try:
        yield
    except BaseException:
        DNS_PROVIDER_FAILURES.labels(provider=provider, op=op).inc()
        raise
    finally:
        DNS_PROVIDER_SECONDS.labels(provider=provider, op=op).observe(time.monotonic() - started)


# -- scrape-time gauges from the database ----------------------------------------------------


class DatabaseCollector(Collector):
    """Gauges computed from the database on every scrape (read-only, one query per family)."""

    def __init__(self, engine: Engine, job_kinds: Sequence[str], limits: Sequence[Limit] = ()) -> None:
        self.engine = engine
        self.job_kinds = tuple(job_kinds)
        self.limits = tuple(limits)

    def collect(self) -> Iterable[Any]:
        up = GaugeMetricFamily("jackdaw_database_up", "1 if the scrape-time database queries succeeded")
        try:
            families = self._families()
        except Exception as exc:
            log.warning("metrics: database queries failed: %s", type(exc).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *families]

    def _families(self) -> list[GaugeMetricFamily]:
        now = utcnow()
        # read_only: a plain deferred BEGIN on SQLite, never the write lock
        with self.engine.connect().execution_options(read_only=True) as conn:
            orders = {status: count for status, count in conn.execute(
                select(Order.status, func.count()).group_by(Order.status))}
            authzs = {status: count for status, count in conn.execute(
                select(Authz.status, func.count()).group_by(Authz.status))}
            jobs = {kind: (count, oldest) for kind, count, oldest in conn.execute(
                select(Job.kind, func.count(), func.min(Job.created)).group_by(Job.kind))}
            buckets = list(conn.execute(select(BudgetBucket.limit, BudgetBucket.tokens, BudgetBucket.updated)
                                        .where(BudgetBucket.limit.in_([lim.name for lim in self.limits]))))
            paused = conn.execute(select(func.count()).select_from(UpstreamPause)).scalar() or 0
        order_family = GaugeMetricFamily("jackdaw_orders", "Client orders by stored status", labels=["status"])
        for status in sorted({*ORDER_STATUSES, *orders}):
            order_family.add_metric([status], orders.get(status, 0))
        authz_family = GaugeMetricFamily("jackdaw_authorizations", "Client authorizations by stored status",
                                         labels=["status"])
        for status in sorted({*AUTHZ_STATUSES, *authzs}):
            authz_family.add_metric([status], authzs.get(status, 0))
        depth = GaugeMetricFamily("jackdaw_job_queue_depth", "Durable jobs waiting or running, by kind",
                                  labels=["kind"])
        age = GaugeMetricFamily("jackdaw_job_oldest_age_seconds",
                                "Age of the oldest durable job of each kind (0 when none)", labels=["kind"])
        for kind in sorted({*self.job_kinds, *jobs}):
            count, oldest = jobs.get(kind, (0, None))
            depth.add_metric([kind], count)
            age.add_metric([kind], max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
        return [order_family, authz_family, depth, age, *self._budget(buckets, int(paused), now)]

    def _budget(self, buckets: list[Any], paused: int, now: datetime) -> list[GaugeMetricFamily]:
        lowest = GaugeMetricFamily("jackdaw_budget_remaining_lowest",
                                   "Tokens left in the emptiest bucket of each upstream limit (its capacity when "
                                   "nothing was spent)", labels=["limit"])
        spent = GaugeMetricFamily("jackdaw_budget_exhausted",
                                  "Buckets of each upstream limit with less than one token left", labels=["limit"])
        capacity = GaugeMetricFamily("jackdaw_budget_capacity",
                                     "Tokens a full bucket of each upstream limit holds (nearly spent: "
                                     "jackdaw_budget_remaining_lowest / jackdaw_budget_capacity)", labels=["limit"])
        for lim in self.limits:
            levels = [refill(tokens, lim, (now - _aware(updated)).total_seconds())
                      for name, tokens, updated in buckets if name == lim.name]
            lowest.add_metric([lim.name], min(levels, default=float(lim.capacity)))
            spent.add_metric([lim.name], sum(1 for level in levels if level < 1))
            capacity.add_metric([lim.name], lim.capacity)
        pauses = GaugeMetricFamily("jackdaw_upstream_paused_names",
                                   "Names the upstream CA paused for the relay's account (jackdaw budget)")
        pauses.add_metric([], paused)
        return [lowest, spent, capacity, pauses]


def names_label(names: Sequence[str]) -> str:
    """A name set as one bounded label value: its first name, and how many more."""
    first = names[0] if names else ""
    return first if len(names) <= 1 else f"{first} +{len(names) - 1}"


class CertificateCollector(Collector):
    """``jackdaw_certificate_expiration_timestamp_seconds`` of each current certificate
    (jackdaw.inventory: one series per name set, a renewed set shows its new certificate) and of
    the relay's own certificate (``kind="relay"``; not while only the placeholder is there)."""

    def __init__(self, engine: Engine, relay: Callable[[], CertStatus] | None = None) -> None:
        self.engine = engine
        self.relay = relay

    def collect(self) -> Iterable[Any]:
        cap = CERTIFICATE_SERIES_CAP
        expiry = GaugeMetricFamily(
            "jackdaw_certificate_expiration_timestamp_seconds",
            "notAfter (Unix time) of the current certificate of each name set ('names': its first name and how "
            f"many more; at most {cap} series, soonest first), and of the relay's own (kind=relay)",
            labels=["kind", "names", "serial"])
        families: list[Any] = [expiry]
        try:
            # read_only: a plain deferred BEGIN on SQLite, never the write lock
            with self.engine.connect().execution_options(read_only=True) as conn, Session(bind=conn) as s:
                current = inventory.current_certificates(s)
        except Exception as exc:  # jackdaw_database_up says so; the relay part still counts
            log.warning("metrics: certificate inventory failed: %s", type(exc).__name__)
        else:
            count = GaugeMetricFamily("jackdaw_certificates_current",
                                      "Name sets with a current certificate (the expiry series are capped)")
            count.add_metric([], len(current))
            families.append(count)
            seen: set[str] = set()
            for cert in current:  # soonest first: the cap keeps the ones an alert is about
                label = names_label(cert.names)
                if label in seen:  # another set with the same first name and size: the sooner one stands
                    continue
                if len(seen) >= cap:
                    break
                seen.add(label)
                expiry.add_metric(["client", label, cert.serial], _aware(cert.not_after).timestamp())
        if self.relay is not None:
            families.append(self._relay(expiry))
        return families

    def _relay(self, expiry: GaugeMetricFamily) -> GaugeMetricFamily:
        assert self.relay is not None
        status = self.relay()
        real = status.usable and not status.placeholder and status.covers_domain
        if real and status.not_after is not None:
            expiry.add_metric(["relay", status.domain, status.serial], status.not_after.timestamp())
        ok = GaugeMetricFamily("jackdaw_relay_certificate_ok",
                               "1 when RELAY_CERT_DIR holds a usable CA-issued certificate for RELAY_DOMAIN "
                               "(0: missing, unreadable, the self-signed placeholder, or for another name)")
        ok.add_metric([], 1 if real else 0)
        return ok


def build_info() -> GaugeMetricFamily:
    info = GaugeMetricFamily("jackdaw_build_info", "Always 1: the running Jackdaw and Python versions",
                             labels=["version", "python"])
    info.add_metric([__version__, platform.python_version()], 1)
    return info


class _Static(Collector):
    def collect(self) -> Iterable[Any]:
        return [build_info()]


class _Forward(Collector):
    """This process's registry inside the per-scrape one."""

    def collect(self) -> Iterable[Any]:
        return REGISTRY.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV, "").strip() or None


def _aware(when: datetime) -> datetime:
    """A Core query on SQLite returns naive UTC datetimes (the ORM type adds the zone)."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def render(engine: Engine, job_kinds: Sequence[str], accept: str | None,
           limits: Sequence[Limit] = (), relay: Callable[[], CertStatus] | None = None) -> tuple[bytes, str]:
    """The exposition (body, content type) for one scrape, in the format ``accept`` asks for.
    ``relay``: reads the relay certificate's status (None: no relay certificate to report)."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        prometheus_multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward())
    registry.register(_Static())
    registry.register(DatabaseCollector(engine, job_kinds, limits))
    registry.register(CertificateCollector(engine, relay))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
