"""Wiring: settings → database → jobs → DNS provider → upstream → blueprints."""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Flask
from sqlalchemy import event

from jackdaw import logs, metrics, notify
from jackdaw import retention as retention_job
from jackdaw.budget import Budget, settle_budget
from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.dns.registry import build_provider
from jackdaw.jobs import JobKind, JobQueue
from jackdaw.nonces import NoncePool
from jackdaw.protocol import jws
from jackdaw.ra.validation import ValidationJob
from jackdaw.relaycert import RelayCertificate, RelayCertJob
from jackdaw.relaycert.job import MAX_ATTEMPTS as RELAY_CERT_ATTEMPTS
from jackdaw.runtime import Runtime
from jackdaw.settings import Settings
from jackdaw.upstream import directory
from jackdaw.upstream.account import UpstreamAccount
from jackdaw.upstream.dns01 import DNS01
from jackdaw.upstream.issuer import OrderJob
from jackdaw.upstream.renewal import RenewalInfoJob
from jackdaw.upstream.revoker import RevokeJob
from jackdaw.upstream.sequence import Leg2
from jackdaw.va.http01 import HTTP01Validator
from jackdaw.wfe import errors, ops, settle, status, transaction
from jackdaw.wfe.views import bp


def configure_logging(level: str, log_format: str = "text", secrets: tuple[str, ...] = ()) -> None:
    """Root logging to stderr in LOG_FORMAT, with `secrets` redacted from every line.

    Jackdaw owns one handler (marked `jackdaw_handler`), added when the root logger has none
    (gunicorn leaves it bare) and re-formatted by every later call; when someone else already
    configured the root logger (an embedding application, pytest), their handlers are left alone.
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "jackdaw_handler", False)), None)
    if handler is None and not root.handlers:
        handler = logging.StreamHandler()
        handler.jackdaw_handler = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    if handler is not None:
        handler.setFormatter(logs.make_formatter(log_format, secrets))
    root.setLevel(level)
    logging.getLogger("jackdaw").setLevel(level)


def build_app(settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level, settings.log_format,
                      logs.secret_values({**settings.env, **notify.secrets_of(settings)}))
    provider = build_provider(settings.dns_provider, settings.env)  # fails fast on bad DNS settings

    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    queue = JobQueue(engine, sessions, threads=settings.job_threads, lease_seconds=settings.job_lease)
    event.listen(sessions, "after_commit", queue.after_commit)

    upstream = UpstreamAccount(settings, sessions)
    validator = HTTP01Validator(
        port=settings.challenge_http_port,
        timeout=settings.challenge_timeout,
        retries=settings.challenge_retries,
        retry_delay=settings.challenge_retry_delay,
        resolver=settings.dns_resolver,
        allow_loopback=settings.challenge_allow_loopback,
        allowed_networks=settings.challenge_allowed_networks,
    )
    validation = ValidationJob(sessions, queue, validator, settings.allowed_domains)
    dns01 = DNS01(settings, provider, sessions, queue)
    budget = Budget(settings)
    leg2 = Leg2(sessions, upstream, dns01, budget)
    issuance = OrderJob(sessions, leg2)
    revocation = RevokeJob(sessions, upstream)
    queue.register(JobKind.VALIDATE, validation, validation.give_up)
    queue.register(JobKind.ORDER, issuance, issuance.give_up)
    queue.register(JobKind.REVOKE, revocation, revocation.give_up)
    queue.register(JobKind.RENEWAL_INFO, RenewalInfoJob(sessions, upstream))
    # the upstream directory (profiles, ARI, CAA identities), stored: one fetch per interval
    # across instances, each process reading what was stored
    queue.register(JobKind.UPSTREAM_DIRECTORY, upstream.directory.run)
    queue.periodic.append((directory.SYNC_EVERY, lambda: upstream.directory.sync(queue)))
    # removals are retried for as long as it takes: a value Jackdaw wrote is always removed
    queue.register(JobKind.DNS_ZONE, dns01.run_zone, dns01.give_up, max_attempts=30)
    retention = retention_job.RetentionJob(sessions, retention_job.Retention(
        order_age=timedelta(days=settings.retention_days) if settings.retention_days else None,
        certificate_margin=timedelta(days=settings.retention_cert_margin_days),
        bucket_periods=budget.bucket_periods()))
    queue.register(JobKind.RETENTION, retention)
    # due one period after it is first asked for: a start does not begin with pruning
    queue.periodic.append((retention_job.EVERY, lambda: queue.ask(JobKind.RETENTION, retention_job.SUBJECT,
                                                                   retention_job.EVERY)))
    queue.periodic.append((60.0, lambda: settle_budget(sessions, budget)))
    queue.periodic.append((60.0, lambda: dns01.sweep_orphans(timedelta(seconds=4 * settings.job_lease))))
    # the relay's own TLS certificate: first check at start (in the workers' periodic thread)
    relay_cert = RelayCertificate(settings, sessions, queue)
    # notifications: raised by the sweep (and the relay certificate's job), delivered by jobs
    notifier = notify.Notifier(settings, sessions, queue, budget.limits())
    queue.register(JobKind.NOTIFY, notifier.deliver, notifier.give_up, max_attempts=settings.notify_attempts)
    queue.register(JobKind.NOTIFY_SWEEP, notifier.run_sweep)
    upstream.directory.on_withdrawn = notifier.profiles_withdrawn
    if notifier.channels:
        queue.periodic.append((notify.EVERY, lambda: queue.ask(JobKind.NOTIFY_SWEEP, notify.SWEEP, notify.EVERY)))
    relay_job = RelayCertJob(settings, relay_cert.store, leg2, notifier)
    queue.register(JobKind.RELAY_CERT, relay_job, relay_job.give_up, max_attempts=RELAY_CERT_ATTEMPTS)
    if settings.relay_cert_enabled:
        queue.periodic.append((settings.relay_cert_check_interval, relay_cert.check))

    metrics.initialise(sorted(queue.handlers), provider.name, budget.limits() if budget.enabled else ())

    app = Flask("jackdaw", static_folder=None)
    # one limit for every body (a chunked one too); ACME requests are a few kilobytes
    app.config["MAX_CONTENT_LENGTH"] = jws.MAX_BODY_BYTES
    app.extensions["jackdaw"] = Runtime(settings, engine, sessions, queue, upstream, NoncePool(engine), budget)
    app.register_blueprint(bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(status.bp)
    settle.register(app)  # first: its count must see every request that its teardown sees
    errors.register(app)
    transaction.register(app)
    return app
