"""Obtaining and renewing the relay's own certificate: one durable job, run through leg 2.

The job is the row ("relay_cert", <RELAY_DOMAIN>): the queue's unique (kind, subject) and its
lease let exactly one thread of one instance work on it at a time, however many workers and
instances share the database (they share RELAY_CERT_DIR too). A periodic check in every worker
writes the placeholder when nothing usable is installed and queues the job when a renewal is
due; `jackdaw relay-cert renew` queues it from the command line.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jackdaw import metrics
from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.durations import human
from jackdaw.jobs import JobContext, JobKind, JobQueue, RetryLater, fenced
from jackdaw.models import Job, utcnow
from jackdaw.notify import Notifier
from jackdaw.protocol import problems
from jackdaw.relaycert.files import CertStatus, CertStore, dns_names, matches
from jackdaw.settings import Settings
from jackdaw.upstream.sequence import Failed, Issued, Leg2, Stage

log = logging.getLogger(__name__)

#: first retry after a failure, doubling up to RETRY_MAX (Let's Encrypt allows 5 failed
#: validations per name and hour: this stays well below)
RETRY_BASE = 60.0
RETRY_MAX = 3600.0
RELOAD_TIMEOUT = 60.0
#: failed runs before the job gives up until the next periodic check (about 7 h of back-off)
MAX_ATTEMPTS = 12


def job_subject(domain: str) -> str:
    """The job's subject (and owner of its TXT rows, at most 32 characters): the domain itself,
    or a digest of it when longer."""
    return domain if len(domain) <= 32 else hashlib.sha256(domain.encode()).hexdigest()[:32]


class ReloadFailed(Exception):
    pass


def reload_server(settings: Settings) -> None:
    """Make the TLS server load the new files: RELAY_CERT_RELOAD_COMMAND, then a SIGHUP to the
    pid in RELAY_CERT_RELOAD_PIDFILE (either, both or neither)."""
    command = settings.relay_cert_reload_command
    if command:
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=RELOAD_TIMEOUT,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ReloadFailed(f"{command[0]}: {e}") from e
        if proc.returncode != 0:
            output = (proc.stderr or proc.stdout).strip()[-500:]
            raise ReloadFailed(f"{' '.join(command)} exited with {proc.returncode}: {output}")
    pidfile = settings.relay_cert_reload_pidfile
    if pidfile is not None:
        try:
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, signal.SIGHUP)
        except (OSError, ValueError, IndexError) as e:
            raise ReloadFailed(f"SIGHUP to the pid in {pidfile}: {e}") from e


@dataclass
class RelayCertJob:
    """The job handler: placeholder, renewal when due or forced (leg 2's one sequence, a step
    per run), then the reload."""

    settings: Settings
    store: CertStore
    leg2: Leg2
    notifier: Notifier | None = None

    def __call__(self, ctx: JobContext) -> None:
        if not self.settings.relay_cert_enabled:
            return
        self.store.ensure_placeholder()
        force = self.store.force_token()
        reason = "renewal forced" if force is not None else self.store.status().renewal_reason(
            self.settings.relay_cert_renew_days)
        try:
            if reason is not None:
                self._renew(ctx, reason)
                metrics.RELAY_CERT_RENEWALS.inc()
                if force is not None:
                    self.store.clear_force(force)
            if self.store.reload_pending():
                reload_server(self.settings)
                self.store.reloaded()
                log.info("relay certificate: TLS server reloaded")
        except RetryLater as exc:  # leg 2's transient trouble, on this job's slower back-off
            self._retry(ctx, str(exc), exc)
        except (ReloadFailed, OSError) as exc:
            self._retry(ctx, f"{type(exc).__name__}: {exc}", exc)

    def _retry(self, ctx: JobContext, reason: str, cause: BaseException) -> None:
        metrics.RELAY_CERT_FAILURES.inc()
        delay = min(RETRY_BASE * 2.0 ** max(ctx.attempts - 1, 0), RETRY_MAX)
        log.warning("relay certificate for %s failed (attempt %d): %s; the current certificate stays in "
                    "place, next try in %s", self.store.domain, ctx.attempts, reason, human(delay))
        if self.notifier is not None:
            self.notifier.relay_cert_failing(self.store.domain, reason, ctx.attempts, delay,
                                             self.store.status().not_after)
        raise RetryLater(reason, delay) from cause

    def _renew(self, ctx: JobContext, reason: str) -> None:
        """A new key (kept in RELAY_CERT_DIR until its certificate comes), an upstream order with
        DNS-01, finalize, install: the key never leaves here."""
        domain = self.store.domain
        state = self.leg2.state(ctx.kind, ctx.subject_id)
        if state is None or state.stage in (Stage.DONE, Stage.FAILED):
            with fenced(self.leg2.sessions, ctx) as s:  # a new renewal: a new upstream order
                short = self.leg2.budget.spend_for_relay(s, [domain]) if self.leg2.budget is not None else None
                if short is not None:  # even the reserve is spent: the CA would refuse too
                    raise RetryLater(short.detail, float(short.retry_after or RETRY_BASE))
                self.leg2.reset(s, ctx.kind, ctx.subject_id)
            self.store.drop_renewal()
            log.info("relay certificate for %s: %s; obtaining a new one", domain, reason)
        outcome = self.leg2.advance(ctx, [domain], self.store.renewal_csr)
        if isinstance(outcome, Failed):
            raise RetryLater(outcome.problem.detail, 0)
        assert isinstance(outcome, Issued)
        chain = outcome.chain.strip() + "\n"
        leaf = x509.load_pem_x509_certificates(chain.encode())[0]
        if not matches(leaf, self.store.renewal_key()) or domain not in dns_names(leaf):
            self.store.drop_renewal()
            with fenced(self.leg2.sessions, ctx) as s:
                self.leg2.reset(s, ctx.kind, ctx.subject_id)
            raise RetryLater("the upstream CA returned a certificate for another key or name", 0)
        ctx.guard()  # RELAY_CERT_DIR is shared: a run taken over installs nothing
        self.store.install_renewal(chain.encode())
        with fenced(self.leg2.sessions, ctx) as s:
            self.leg2.finish(s, ctx.kind, ctx.subject_id)
        log.info("relay certificate for %s installed: serial %x, valid until %s", domain, leaf.serial_number,
                 leaf.not_valid_after_utc.isoformat())

    def give_up(self, ctx: JobContext, reason: str) -> None:
        self.leg2.abandon(ctx, problems.ServerInternal(reason))
        log.error("relay certificate for %s: giving up until the next check (%s)", self.store.domain, reason)


@dataclass
class JobState:
    """The relay certificate's job row, when one exists."""

    run_at: datetime
    attempts: int
    running: bool
    last_error: str | None


def job_state(s: Session, domain: str) -> JobState | None:
    """The job row of the relay certificate for ``domain``, if one exists (the status views read
    it without a queue)."""
    row = s.scalars(select(Job).where(Job.kind == JobKind.RELAY_CERT, Job.subject_id == job_subject(domain))).first()
    if row is None:
        return None
    running = row.lease_until is not None and row.lease_until > utcnow()
    return JobState(row.run_at, row.attempts, running, row.last_error)


class RelayCertificate:
    """The operations around the job: the periodic check, renew(force) and status()."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], queue: JobQueue) -> None:
        self.settings = settings
        self.sessions = sessions
        self.queue = queue
        self.store = CertStore(settings.relay_cert_path, settings.relay_domain)
        self.subject = job_subject(settings.relay_domain)

    def check(self) -> None:
        """Periodic: keep a certificate nginx can start with, and queue the job when it has work.

        A job already queued (perhaps waiting out a back-off) is left alone."""
        if not self.settings.relay_cert_enabled:
            return
        if self.store.ensure_placeholder():
            log.info("relay certificate: self-signed placeholder written to %s", self.store.directory)
        reason = self.store.status().renewal_reason(self.settings.relay_cert_renew_days)
        if reason is None and self.store.force_token() is None and not self.store.reload_pending():
            return
        if self.job() is None:
            self._enqueue()

    def renew(self, force: bool = False) -> None:
        """Queue the job now (also during a back-off); ``force`` renews even a fresh certificate."""
        if force:
            self.store.request_force()
        self._enqueue()

    def status(self) -> CertStatus:
        return self.store.status()

    def job(self) -> JobState | None:
        with self.sessions() as s:
            return job_state(s, self.store.domain)

    def _enqueue(self) -> None:
        with self.sessions.begin() as s:
            self.queue.enqueue(s, JobKind.RELAY_CERT, self.subject)


def standalone(settings: Settings) -> RelayCertificate:
    """For the command line: the database of ``settings``, no job threads (the relay runs the job)."""
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    return RelayCertificate(settings, sessions, JobQueue(engine, sessions, threads=0))
