"""Settings checked once in gunicorn's master, before it binds or forks a worker.

A bad setting is one line naming the variable on stderr and exit status 78 (EX_CONFIG, as
sysexits.h), which deploy/jackdaw.service lists in RestartPreventExitStatus=: systemd does not
restart a relay that cannot start, and the journal shows the line instead of a worker's traceback.
"""

from __future__ import annotations

import os
import sys

from jackdaw.envparse import ConfigError

#: gunicorn's own codes are 1 (its config), 3 (a worker failed to boot), 4 (the app failed to load)
CONFIG_EXIT = 78

_checked = False


def check_settings() -> None:
    """Settings.from_env and the DNS provider, as create_app builds them; ConfigError if bad."""
    from jackdaw.dns.registry import build_provider
    from jackdaw.serving import Serving
    from jackdaw.settings import Settings
    from jackdaw.statedirs import check_state_dirs

    settings = Settings.from_env()
    build_provider(settings.dns_provider, settings.env)
    # gunicorn's own settings as gunicorn.conf.py reads them, and the directories the relay writes
    check_state_dirs(settings, Serving.parse(os.environ))


def exit_on_bad_settings() -> None:
    """For gunicorn.conf.py; once per process (a SIGHUP re-reads the config file, and a
    running relay keeps its workers rather than exiting over a setting edited since)."""
    global _checked
    if _checked:
        return
    _checked = True
    try:
        check_settings()
    except ConfigError as exc:
        print(f"jackdaw: configuration error: {exc}", file=sys.stderr, flush=True)
        sys.exit(CONFIG_EXIT)


_warned = False


def warn_unknown_settings() -> None:
    """For gunicorn.conf.py: a name that looks like a mistyped setting (ALLOWED_DOMIANS) is one
    warning line each (`jackdaw check` refuses it); once per process, as above."""
    global _warned
    if _warned:
        return
    _warned = True
    from jackdaw import envfile, knownkeys

    loaded = envfile.load()
    for name in knownkeys.unknown([loaded.file] if loaded.file else [], os.environ):
        print(f"jackdaw: warning: {name.line()}", file=sys.stderr, flush=True)


_database_checked = False


def exit_on_unusable_database() -> None:
    """For gunicorn.conf.py, after the settings: a database the relay cannot open, or whose schema
    is not at this code's head, is one line and exit 78 rather than workers answering every
    request with a traceback. Once per process, as the settings (a SIGHUP re-reads this file)."""
    global _database_checked
    if _database_checked:
        return
    _database_checked = True
    from jackdaw.dbcheck import problem_at_start
    from jackdaw.settings import Settings

    found = problem_at_start(Settings.from_env().database_url)
    if found is not None:
        print(f"jackdaw: database error: {found}", file=sys.stderr, flush=True)
        sys.exit(CONFIG_EXIT)
