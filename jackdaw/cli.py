"""Operator commands: `jackdaw db upgrade`, `jackdaw check`, `jackdaw dns-check NAME`."""

from __future__ import annotations

import argparse
import sys

from jackdaw.dns.base import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jackdaw", description="Jackdaw ACME relay operator commands")
    sub = parser.add_subparsers(dest="command", required=True)
    db = sub.add_parser("db", help="database schema (alembic)")
    db.add_argument("action", choices=["upgrade", "current"])
    sub.add_parser("check", help="validate settings and the DNS provider configuration")
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
    args = parser.parse_args(argv)
    if getattr(args, "timeout", None) is not None and not args.timeout > 0:
        parser.error("--timeout: must be a positive number of seconds")

    from jackdaw.settings import Settings, database_url_from_env

    try:
        if args.command == "db":
            from jackdaw import migrate
            from jackdaw.db import make_engine

            url = database_url_from_env()
            if args.action == "upgrade":
                migrate.upgrade(url)
            print("schema at head" if migrate.is_at_head(make_engine(url)) else "schema NOT at head")
            return 0
        settings = Settings.from_env()
        from jackdaw.dns.registry import build_provider

        provider = build_provider(settings.dns_provider, settings.env)
        if args.command == "dns-check":
            from jackdaw.dns.check import run_check

            result = run_check(args.name, settings, provider, timeout=args.timeout)
            for line in result.details():
                print(line)
            for line in result.verdict():
                print(line, file=sys.stdout if result.ok else sys.stderr)
            return 0 if result.ok else 1
        print(f"settings OK: relay {settings.relay_domain}, upstream {settings.le_directory}, "
              f"DNS provider {settings.dns_provider}, database {settings.database_url.split('://')[0]}")
        return 0
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
