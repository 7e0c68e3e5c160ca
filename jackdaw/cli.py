"""Operator commands: `jackdaw db upgrade`, `jackdaw check`."""

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
    args = parser.parse_args(argv)

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

        build_provider(settings.dns_provider, settings.env)
        print(f"settings OK: relay {settings.relay_domain}, upstream {settings.le_directory}, "
              f"DNS provider {settings.dns_provider}, database {settings.database_url.split('://')[0]}")
        return 0
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
