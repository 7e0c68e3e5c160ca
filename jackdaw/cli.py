"""Operator commands (`jackdaw --help`): argument parsing and dispatch only.

Database inspection and repair live in jackdaw.ops. Exit codes: 0 ok, 1 the operation failed,
the thing was not found, or a check did not pass (`db current` not at head, `check --online`),
2 configuration error (and bad arguments). Every failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from jackdaw import __version__
from jackdaw.envparse import ConfigError
from jackdaw.protocol.constants import Status

ORDER_STATUSES = [Status.PENDING, Status.READY, Status.PROCESSING, Status.VALID, Status.INVALID]


def _int_at_least(minimum: int, what: str = "number") -> Callable[[str], int]:
    """An argparse type: a whole ``what`` (number, number of days) of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_whole_days = _int_at_least(0, "number of days")


def _reasons() -> dict[int, str]:
    from jackdaw.ra.revocation import REASONS

    return REASONS


def _revocation_reason(text: str) -> int:
    by_name = {name.lower(): code for code, name in _reasons().items()}
    code = int(text) if text.isdigit() else by_name.get(text.lower())
    if code not in _reasons():
        raise argparse.ArgumentTypeError(f"{text!r} is not a reason a subscriber may give: "
                                         + ", ".join(f"{n} ({c})" for c, n in _reasons().items()))
    return code


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table (for scripts)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jackdaw", description="Jackdaw ACME relay operator commands",
        epilog="exit codes: 0 ok, 1 failed (or a check did not pass), 2 configuration error")
    parser.add_argument("--version", action="version", version=f"jackdaw {__version__}")
    parser.add_argument("--env-file", metavar="PATH", default=os.environ.get("JACKDAW_ENV_FILE") or None,
                        help="settings file the systemd unit reads (EnvironmentFile=); its values win over the "
                             "environment and no ./.env is read (default: $JACKDAW_ENV_FILE)")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database schema (alembic): `upgrade` creates or migrates it, `current` "
                                   "exits 1 unless it is at head")
    db.add_argument("action", choices=["upgrade", "current"])

    backup = sub.add_parser("backup", help="write the whole database to FILE, mode 0600 (SQLite: online, "
                                           "consistent while the relay runs; PostgreSQL: pg_dump --format=custom)")
    backup.add_argument("file", metavar="FILE")
    backup.add_argument("--force", action="store_true", help="replace FILE if it exists")
    restore = sub.add_parser("restore", help="put a `jackdaw backup` FILE back into the configured database, then "
                                             "upgrade its schema to head (stop the relay first)")
    restore.add_argument("file", metavar="FILE")
    restore.add_argument("--force", action="store_true", help="replace a database that holds data")

    check = sub.add_parser("check", help="validate settings and the DNS provider configuration (--online: and "
                                         "connect to the database, upstream CA, DNS provider and name servers)")
    check.add_argument("--show", action="store_true",
                       help="also print the effective configuration (secrets masked)")
    check.add_argument("--online", action="store_true",
                       help="connect, read-only: database at head, upstream directory over UPSTREAM_CA_BUNDLE, "
                            "the bundle itself, DNS provider credentials, resolver and authoritative servers; "
                            "exit 1 if any fails")
    _json_flag(check)

    dns_check = sub.add_parser(
        "dns-check",
        help="write a test TXT at _acme-challenge.NAME, time its propagation, remove it",
        description="Write a random TXT value at _acme-challenge.NAME (or its CNAME target) through "
                    "the configured DNS provider, wait until every authoritative server serves it, "
                    "print per-server timings, and remove it. Exit 0 if all worked, 1 if not.",
    )
    dns_check.add_argument("name", metavar="NAME", help="a name to be certified, e.g. host.example.com")
    dns_check.add_argument("--timeout", type=float, metavar="SECONDS",
                           help="propagation timeout (default: DNS_PROPAGATION_TIMEOUT)")

    _json_flag(sub.add_parser("accounts", help="list client accounts with their number of orders"))

    orders = sub.add_parser("orders", help="list orders, newest first")
    orders.add_argument("--status", choices=ORDER_STATUSES, help="only orders in this status")
    orders.add_argument("--name", metavar="SUBSTRING", help="only orders with an identifier containing this")
    orders.add_argument("--limit", type=_positive_int, metavar="N", help="at most N orders")
    _json_flag(orders)

    certificates = sub.add_parser("certificates", help="list issued certificates, soonest expiry first, the "
                                                        "current one of each name set marked")
    certificates.add_argument("--expiring-within", type=_whole_days, metavar="DAYS",
                              help="only those that expire within DAYS days (expired ones included)")
    certificates.add_argument("--name", metavar="NAME", help="only those for NAME (one of their names)")
    _json_flag(certificates)

    certificate = sub.add_parser("certificate", help="one certificate: revoke it")
    certificate_sub = certificate.add_subparsers(dest="action", required=True)
    revoke_cert = certificate_sub.add_parser(
        "revoke", help="revoke it here at once (clients' revokeCert path) and upstream through the relay's job")
    revoke_cert.add_argument("serial", metavar="SERIAL", help="hex serial, as `jackdaw certificates` shows it")
    revoke_cert.add_argument("--reason", type=_revocation_reason, default=0, metavar="REASON",
                             help="RFC 5280 reason: " + ", ".join(f"{n} ({c})" for c, n in _reasons().items())
                                  + " (default unspecified)")

    account = sub.add_parser("account", help="one client account: block or unblock it")
    account_sub = account.add_subparsers(dest="action", required=True)
    for action, text in (("block", "refuse every request the account signs (ACME unauthorized) until unblocked"),
                         ("unblock", "lift the block")):
        account_sub.add_parser(action, help=text).add_argument("account_id", metavar="ID")

    order = sub.add_parser("order", help="one order: show its history, retry or cancel it")
    order_sub = order.add_subparsers(dest="action", required=True)
    show = order_sub.add_parser("show", help="everything stored about the order (why it is stuck)")
    show.add_argument("order_id", metavar="ID")
    _json_flag(show)
    retry = order_sub.add_parser(
        "retry", help="re-queue the upstream job of an order stuck in processing (or ready with an upstream error)")
    retry.add_argument("order_id", metavar="ID")
    cancel = order_sub.add_parser(
        "cancel", help="make a pending/ready/processing order invalid and drop its jobs")
    cancel.add_argument("order_id", metavar="ID")

    eab = sub.add_parser("eab", help="external account binding keys: who may have an account, and for which names")
    eab_sub = eab.add_subparsers(dest="action", required=True)
    add = eab_sub.add_parser(
        "add", help="make a key (its id and HMAC key are printed once) with the policy its accounts follow",
        description="Make an EAB key for certbot --eab-kid/--eab-hmac-key, lego --eab --kid --hmac, acme.sh "
                    "--eab-kid/--eab-hmac-key, Caddy's eab { key_id mac_key }. One key may bind several "
                    "accounts (a team's hosts); `eab revoke` revokes them all.")
    add.add_argument("name", metavar="NAME", help="a name for the key (a team, a host group)")
    add.add_argument("--allow", action="append", required=True, metavar="PATTERN",
                     help="a name (host.example.com) or *.domain for the names under it (not the domain "
                          "itself); repeat for more")
    add.add_argument("--wildcards", action="store_true",
                     help="allow wildcard names (*.B needs B itself allowed by a pattern)")
    add.add_argument("--source", action="append", default=[], metavar="CIDR",
                     help="requests must come from this network (the client address, from a trusted proxy's "
                          "X-Forwarded-For); repeat for more")
    add.add_argument("--requester-in-dns", action="store_true",
                     help="the requester's address must be among the name's A/AAAA addresses")
    add.add_argument("--orders-per-hour", type=_positive_int, metavar="N", help="at most N new orders an hour")
    add.add_argument("--profile", action="append", default=[], metavar="NAME",
                     help="a certificate profile its accounts may ask for (default: any); repeat for more")
    _json_flag(add)
    _json_flag(eab_sub.add_parser("list", help="the keys, their policy and how many accounts each binds"))
    revoke = eab_sub.add_parser("revoke", help="revoke a key and every account bound with it")
    revoke.add_argument("name", metavar="NAME")

    budget = sub.add_parser("budget", help="the upstream budget ledger (the CA's limits, as spent here)")
    budget_sub = budget.add_subparsers(dest="action")
    unpause = budget_sub.add_parser("unpause", help="stop refusing names the CA had paused (after unpausing "
                                                     "them at the CA's link)")
    unpause.add_argument("names", nargs="+", metavar="NAME")
    _json_flag(budget)

    persist = sub.add_parser("dns-persist", help="dns-persist-01: the record that proves a name with no DNS write")
    persist_sub = persist.add_subparsers(dest="action", required=True)
    for action, text in (("show", "print the _validation-persist record to publish once for NAME"),
                         ("check", "whether every authoritative name server serves that record")):
        p = persist_sub.add_parser(action, help=text)
        p.add_argument("name", metavar="NAME")
        p.add_argument("--wildcard", action="store_true", help="the record also authorizes *.NAME (policy=wildcard)")

    _json_flag(sub.add_parser("status", help="the overview the status page shows: relay certificate, upstream "
                                             "account, budget, jobs, failures, certificates by expiry"))

    relay_cert = sub.add_parser("relay-cert", help="the relay's own TLS certificate for RELAY_DOMAIN")
    relay_sub = relay_cert.add_subparsers(dest="action", required=True)
    _json_flag(relay_sub.add_parser("status", help="the installed certificate, its expiry and the renewal job"))
    renew = relay_sub.add_parser("renew", help="queue a renewal now; the running relay does it (only if due "
                                               "unless --force)")
    renew.add_argument("--force", action="store_true", help="renew even a certificate that is not due")
    relay_sub.add_parser("placeholder", help="write a self-signed certificate unless a usable one is there "
                                             "(so nginx can start before the relay has its own)")

    notify = sub.add_parser("notify", help="operator notifications (webhook, e-mail, command)")
    notify_sub = notify.add_subparsers(dest="action", required=True)
    notify_sub.add_parser("test", help="send a test message on every configured channel; exit 1 if one failed")
    return parser


ORDER_ACTIONS = ("show", "retry", "cancel")
#: commands whose one positional argument is an id that may start with "-"
ID_ACTIONS = {"order": ORDER_ACTIONS, "account": ("block", "unblock")}
ORDER_OPTIONS = ("--json", "-h", "--help", "--")


def _order_id_first_dash(argv: list[str]) -> list[str]:
    """Order ids are URL-safe base64 and may start with "-" (even "-h"): pass such an id to
    argparse after "--" so it is taken as the ID, not as an option."""
    if len(argv) < 3 or argv[1] not in ID_ACTIONS.get(argv[0], ()) or "--" in argv:
        return argv
    rest = argv[2:]
    ids = [a for a in rest if a.startswith("-") and a not in ORDER_OPTIONS]
    if len(ids) != 1:
        return argv
    return [*argv[:2], *(a for a in rest if a != ids[0]), "--", ids[0]]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_order_id_first_dash(sys.argv[1:] if argv is None else list(argv)))
    if getattr(args, "timeout", None) is not None and not args.timeout > 0:
        parser.error("--timeout: must be a positive number of seconds")
    if args.command == "check" and args.json and not args.show:
        parser.error("--json: only with --show")
    if args.command == "check" and args.online and args.show:
        parser.error("--online: not with --show")

    if args.env_file:
        os.environ["JACKDAW_ENV_FILE"] = args.env_file  # read by jackdaw.settings, here and in what we run

    from sqlalchemy.exc import SQLAlchemyError

    from jackdaw.ops import commands

    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except commands.Failed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:  # PostgreSQL down, a locked or corrupt SQLite file: one line
        print(f"database error: {commands.one_line(exc)}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    from jackdaw.envfile import data_dir_is_default, database_url_from_env
    from jackdaw.ops import commands
    from jackdaw.settings import Settings

    if args.command == "db":
        url = database_url_from_env()
        if args.action == "upgrade":
            return commands.db_upgrade(url, may_create_dir=data_dir_is_default())
        return commands.db_current(url)
    if args.command in ("backup", "restore"):
        from jackdaw.ops import backup

        run = backup.backup_command if args.command == "backup" else backup.restore_command
        return run(database_url_from_env(), args.file, force=args.force)
    if args.command == "accounts":
        return commands.accounts(as_json=args.json)
    if args.command == "orders":
        return commands.orders(status=args.status, name=args.name, limit=args.limit, as_json=args.json)
    if args.command == "certificates":
        return commands.certificates(as_json=args.json, expiring_within=args.expiring_within, name=args.name)
    if args.command == "certificate":
        return commands.certificate_revoke(args.serial, args.reason)
    if args.command == "account":
        return commands.account_block(args.account_id, blocked=args.action == "block")
    if args.command == "order":
        if args.action == "show":
            return commands.order_show(args.order_id, as_json=args.json)
        if args.action == "retry":
            return commands.order_retry(args.order_id)
        return commands.order_cancel(args.order_id)

    if args.command == "eab":
        if args.action == "add":
            return commands.eab_add(args.name, args.allow, wildcards=args.wildcards, sources=args.source,
                                    requester_in_dns=args.requester_in_dns,
                                    orders_per_hour=args.orders_per_hour, profiles=args.profile,
                                    as_json=args.json)
        if args.action == "list":
            return commands.eab_list(as_json=args.json)
        return commands.eab_revoke(args.name)
    settings = Settings.from_env()
    if args.command == "budget":
        if args.action == "unpause":
            return commands.budget_unpause(args.names)
        return commands.budget(settings, as_json=args.json)
    if args.command == "dns-persist":
        return commands.dns_persist(settings, args.action, args.name, wildcard=args.wildcard)
    if args.command == "status":
        return commands.status(settings, as_json=args.json)
    if args.command == "notify":
        from jackdaw.ops import notify

        return notify.test(settings)
    if args.command == "relay-cert":
        from jackdaw.relaycert import commands as relay_cert

        if args.action != "placeholder":
            commands.require_database(settings.database_url)
        return relay_cert.run(settings, args.action, force=getattr(args, "force", False),
                              as_json=getattr(args, "json", False))
    from jackdaw.dns.registry import build_provider

    provider = build_provider(settings.dns_provider, settings.env)
    if args.command == "dns-check":
        return commands.dns_check(args.name, settings, provider, timeout=args.timeout)
    if args.online:
        commands.check(settings)  # the offline verdict and warnings first
        return commands.check(settings, online=provider)
    return commands.check(settings, show=args.show, as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
