"""Glue for the operator commands in ``jackdaw.cli``: open the database, call, print, exit code.

Exit codes: 0 done, 1 the operation failed or the thing was not found, 2 configuration error
(raised as ConfigError for the CLI to report). The database commands need only DATABASE_URL
(and DATA_DIR), so a relay whose DNS settings are broken can still be inspected.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec

from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from jackdaw.db import sqlite_path
from jackdaw.dns.base import DNSProvider
from jackdaw.envparse import ConfigError
from jackdaw.ops import actions, queries, render
from jackdaw.ops.config import effective_config, mask_url
from jackdaw.settings import Settings

P = ParamSpec("P")


class Failed(Exception):
    """The command could not do its job; the message is for the operator."""


def _guard(fn: Callable[P, int]) -> Callable[P, int]:
    """Operator-facing failures become a message on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return fn(*args, **kwargs)
        except (Failed, queries.NotFound, actions.Refused) as exc:
            print(f"error: {exc}", file=sys.stderr)
        except SQLAlchemyError as exc:
            print(f"database error: {one_line(exc)}", file=sys.stderr)
        return 1

    return wrapper


def one_line(exc: SQLAlchemyError) -> str:
    """The driver's first line (psycopg's 'connection refused' ...), its password masked."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return mask_url(f"{type(exc).__name__}: {lines[0] if lines else 'no detail'}")


def _sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for PostgreSQL and in-memory SQLite); ConfigError if unparseable."""
    from jackdaw.envfile import check_database_url

    check_database_url(url)
    try:
        path = sqlite_path(url)
    except ArgumentError:
        raise ConfigError(f"DATABASE_URL: not a database URL: {mask_url(url)!r}") from None
    return Path(path) if path else None


def require_database(url: str) -> None:
    """Refuse, without creating anything, a database `jackdaw db upgrade` has not made."""
    path = _sqlite_path(url)
    if path is not None and not path.is_file():
        raise Failed(f"no database at {path} (DATABASE_URL / DATA_DIR{_env_file_hint()}); "
                     f"`jackdaw db upgrade` creates it")


def _env_file_hint() -> str:
    import os

    from jackdaw.envfile import ENV_FILE

    env_file = os.environ.get(ENV_FILE, "").strip()
    return f" from {env_file}" if env_file else ", no --env-file / JACKDAW_ENV_FILE given"


@contextmanager
def database(database_url: str | None = None, read_only: bool = True) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    """The relay's database at schema head; read-only sessions don't take SQLite's write lock."""
    from jackdaw import migrate
    from jackdaw.db import make_engine, make_sessionmaker
    from jackdaw.envfile import database_url_from_env

    url = database_url or database_url_from_env()
    require_database(url)
    engine = make_engine(url)
    try:
        if not migrate.is_at_head(engine.execution_options(read_only=True)):
            raise Failed("the database schema is not at head: run `jackdaw db upgrade` first")
        bind = engine.execution_options(read_only=True) if read_only else engine
        yield engine, make_sessionmaker(bind)
    finally:
        engine.dispose()


@_guard
def db_upgrade(url: str) -> int:
    """The only command that creates a database, and only where the settings name it (the CLI
    refuses an unnamed ./data). Its directory must exist (systemd's StateDirectory= makes
    DATA_DIR): a mistyped DATA_DIR is reported instead of becoming a second, empty database."""
    from jackdaw import migrate

    path = _sqlite_path(url)
    if path is not None and not path.parent.is_dir():
        raise Failed(f"the database's directory {path.parent} does not exist (DATA_DIR / DATABASE_URL); "
                     "create it (systemd's StateDirectory= does) or correct the setting")
    migrate.upgrade(url)
    return db_current(url)


@_guard
def db_current(url: str) -> int:
    """Exit 0 only at head: a deploy script can wait on it."""
    from jackdaw import migrate
    from jackdaw.db import make_engine

    require_database(url)
    engine = make_engine(url)
    try:
        current, head = migrate.revisions(engine)
    finally:
        engine.dispose()
    if current == head:
        _emit(f"schema at head ({head})")
        return 0
    print(f"schema NOT at head: database at {current or 'no revision'}, code at {head}; "
          "run `jackdaw db upgrade`", file=sys.stderr)
    return 1


def _emit(text: str) -> None:
    print(text)


@_guard
def accounts(as_json: bool = False) -> int:
    with database() as (_, sessions):
        rows = queries.list_accounts(sessions)
    _emit(render.to_json(rows) if as_json else render.accounts_text(rows))
    return 0


@_guard
def orders(status: str | None = None, name: str | None = None, limit: int | None = None,
           as_json: bool = False) -> int:
    with database() as (_, sessions):
        rows = queries.list_orders(sessions, status=status, name=name, limit=limit)
    _emit(render.to_json(rows) if as_json else render.orders_text(rows))
    return 0


@_guard
def certificates(as_json: bool = False, expiring_within: int | None = None, name: str | None = None) -> int:
    with database() as (_, sessions):
        rows = queries.list_certificates(sessions, expiring_within=expiring_within, name=name)
    _emit(render.to_json(rows) if as_json else render.certificates_text(rows))
    return 0


@_guard
def account_block(account_id: str, blocked: bool) -> int:
    with database(read_only=False) as (_, sessions):
        actions.set_account_blocked(sessions, account_id, blocked)
    _emit(f"account {account_id} " + ("blocked: every request it signs is refused with unauthorized"
                                      if blocked else "unblocked"))
    return 0


@_guard
def certificate_revoke(serial: str, reason: int) -> int:
    from jackdaw.jobs import JobQueue
    from jackdaw.ra.revocation import REASONS

    with database(read_only=False) as (engine, sessions):
        cert = actions.revoke_certificate(sessions, JobQueue(engine, sessions, threads=0), serial, reason)
    _emit(f"certificate {cert.serial} revoked ({REASONS[reason]}); the running relay forwards it to the upstream "
          "CA: `jackdaw certificates` shows UPSTREAM once it has")
    return 0


@_guard
def order_show(order_id: str, as_json: bool = False) -> int:
    from jackdaw.models import utcnow

    now = utcnow()
    with database() as (_, sessions):
        detail = queries.order_detail(sessions, order_id, now=now)
    _emit(render.to_json(detail) if as_json else render.order_text(detail, now))
    return 0


@_guard
def order_retry(order_id: str) -> int:
    from jackdaw.jobs import JobQueue

    with database(read_only=False) as (engine, sessions):
        result = actions.retry_order(sessions, JobQueue(engine, sessions), order_id)
    _emit(render.retry_text(result))
    return 0


@_guard
def order_cancel(order_id: str) -> int:
    with database(read_only=False) as (_, sessions):
        result = actions.cancel_order(sessions, order_id)
    _emit(render.cancel_text(result))
    return 0


@_guard
def eab_add(name: str, allow: list[str], *, wildcards: bool = False, sources: list[str] | None = None,
            requester_in_dns: bool = False, orders_per_hour: int | None = None, profiles: list[str] | None = None,
            as_json: bool = False) -> int:
    from jackdaw.ra import bindings

    with database(read_only=False) as (_, sessions), sessions.begin() as s:
        try:
            made = bindings.add_key(s, name, allow, wildcards=wildcards, sources=sources,
                                    requester_in_dns=requester_in_dns, orders_per_hour=orders_per_hour,
                                    profiles=profiles)
        except bindings.BindingError as exc:
            raise Failed(str(exc)) from None
        view = queries.eab_view(made.key, 0)
    if as_json:
        _emit(json.dumps({"kid": made.kid, "hmac_key": made.hmac_key}))
    else:
        _emit(render.eab_added_text(view, made.hmac_key))
    return 0


@_guard
def eab_list(as_json: bool = False) -> int:
    with database() as (_, sessions):
        rows = queries.list_eab_keys(sessions)
    _emit(render.to_json(rows) if as_json else render.eab_text(rows))
    return 0


@_guard
def eab_revoke(name: str) -> int:
    from jackdaw.ra import bindings

    with database(read_only=False) as (_, sessions), sessions.begin() as s:
        try:
            accounts = bindings.revoke_key(s, name)
        except LookupError as exc:
            raise Failed(str(exc)) from None
    _emit(f"EAB key {name} revoked; {accounts} account(s) bound with it revoked too")
    return 0


@_guard
def budget(settings: Settings, as_json: bool = False) -> int:
    with database() as (_, sessions):
        view = queries.budget_view(sessions, settings)
    _emit(render.to_json(view) if as_json else render.budget_text(view))
    return 0


@_guard
def status(settings: Settings, as_json: bool = False) -> int:
    """`jackdaw status`: what the status page shows (jackdaw.ops.status), in the terminal."""
    from jackdaw.ops import status as overview

    with database(settings.database_url) as (_, sessions):
        report = overview.gather(sessions, settings)
    _emit(render.to_json(report) if as_json else render.status_text(report))
    return 0


@_guard
def budget_unpause(names: list[str]) -> int:
    from jackdaw.budget import Budget

    with database(read_only=False) as (_, sessions), sessions.begin() as s:
        removed = Budget.unpause(s, [n.strip().lower() for n in names])
    _emit(f"{removed} name(s) unpaused" + ("" if removed else " (none was paused)"))
    return 0 if removed else 1


@_guard
def dns_persist(settings: Settings, action: str, name: str, wildcard: bool = False) -> int:
    import requests

    from jackdaw.ops import persist

    with database(settings.database_url, read_only=False) as (_, sessions):
        try:
            record = persist.record_for(settings, sessions, name, wildcard)
        except (persist.PersistError, requests.RequestException) as exc:
            raise Failed(str(exc)) from None
    if action == "show":
        _emit(f"publish once, in the zone that holds {record.name}:\n  {record.zone_line()}")
        return 0
    served = persist.check(settings, record, name)
    for server, ok in sorted(served.items()):
        _emit(f"  {server}: " + {True: "serves it", False: "does NOT serve it", None: "no answer"}[ok])
    good = bool(served) and all(served.values())
    _emit(f"{'OK' if good else 'MISSING'}: {record.name} TXT \"{record.value}\"")
    return 0 if good else 1


def check(settings: Settings, show: bool = False, as_json: bool = False, online: DNSProvider | None = None) -> int:
    """Settings (and the DNS provider, built by the caller) are valid; optionally show them;
    with ``online`` (that provider), connect to what they name: exit 1 if anything fails."""
    if as_json and show:
        _emit(render.to_json(effective_config(settings)))
        return 0
    if online is not None:
        from jackdaw.ops.online import run_checks

        outcomes = run_checks(settings, online)
        for outcome in outcomes:
            print(outcome.line(), file=sys.stdout if outcome.ok else sys.stderr)
        failed = [o.name for o in outcomes if not o.ok]
        _emit(f"online checks: {len(outcomes) - len(failed)} OK, {len(failed)} failed"
              + (f" ({', '.join(failed)})" if failed else ""))
        return 1 if failed else 0
    _emit(f"settings OK: relay {settings.relay_domain}, upstream {settings.le_directory}, "
          f"DNS provider {settings.dns_provider}, database {settings.database_url.split('://')[0]}")
    if not settings.eab_required and not settings.allowed_domains:
        print("WARNING: neither EAB_REQUIRED nor ALLOWED_DOMAINS limits which names this relay issues: anyone "
              "who can reach it and answer HTTP-01 for a name (including outside names CNAME-delegated into "
              "your zones) gets a certificate on your upstream account. Set ALLOWED_DOMAINS, or EAB_REQUIRED=true "
              "with `jackdaw eab add`.", file=sys.stderr)
    for line in _paused_warnings(settings):
        print(line, file=sys.stderr)
    if show:
        _emit(render.config_text(effective_config(settings)))
    return 0


def _paused_warnings(settings: Settings) -> list[str]:
    """Names the upstream CA paused, when the relay's database can be read (no database yet: none)."""
    from jackdaw.envfile import location_named

    if not location_named(settings.env):
        return []
    try:
        with database(settings.database_url) as (_, sessions):
            view = queries.budget_view(sessions, settings)
    except (Failed, SQLAlchemyError, ConfigError):
        return []
    return [f"WARNING: the upstream CA paused issuance for {p.name} for the relay's account since {p.since:%Y-%m-%d}; "
            f"unpause at {p.unpause_url or 'the link in the log'}, then `jackdaw budget unpause {p.name}`"
            for p in view.paused]


def dns_check(name: str, settings: Settings, provider: DNSProvider, timeout: float | None = None) -> int:
    """`jackdaw dns-check NAME`; with the relay's database, its writes hold the zone against
    the relay's own (without one, e.g. before the relay is set up, they run as they are)."""
    from jackdaw.jobs import JobQueue
    from jackdaw.ops.dnscheck import run_check

    def say(line: str) -> None:  # as it happens: a slow server is seen while the check waits
        print(line, flush=True)

    from jackdaw.envfile import location_named

    try:
        if not location_named(settings.env):
            raise Failed("no database named")
        with database(settings.database_url, read_only=False) as (engine, sessions):
            result = run_check(name, settings, provider, timeout=timeout, progress=say,
                               queue=JobQueue(engine, sessions, threads=0, lease_seconds=settings.job_lease))
    except (Failed, SQLAlchemyError):
        result = run_check(name, settings, provider, timeout=timeout, progress=say)
    for line in result.verdict():
        print(line, file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1
