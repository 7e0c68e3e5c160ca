"""Root runs `jackdaw` as the relay's user: the data directory's owner.

Run as root against a DATA_DIR the service user owns, `db upgrade` or `relay-cert placeholder`
would leave root-owned 0600 files the relay cannot open. So before anything is read or written,
the CLI takes the owner's uid, gid and groups (as `sudo -u jackdaw` would); when it cannot, it
refuses in one line. Everything it creates then belongs to the directory's owner.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from pathlib import Path

from jackdaw.envparse import ConfigError
from jackdaw.statedirs import sqlite_file


def state_dir(env: Mapping[str, str]) -> tuple[str, Path] | None:
    """(setting, directory) of the relay's state, from what the settings name: DATA_DIR, the
    SQLite database's directory (DATABASE_URL), RELAY_CERT_DIR; the first that exists."""
    candidates: list[tuple[str, Path]] = []
    if env.get("DATA_DIR", "").strip():
        candidates.append(("DATA_DIR", Path(env["DATA_DIR"].strip())))
    database = sqlite_file(env.get("DATABASE_URL", "").strip())
    if database is not None:
        candidates.append(("DATABASE_URL", database.parent))
    if env.get("RELAY_CERT_DIR", "").strip():
        candidates.append(("RELAY_CERT_DIR", Path(env["RELAY_CERT_DIR"].strip())))
    return next(((key, path) for key, path in candidates if path.is_dir()), None)


def become_owner(env: Mapping[str, str]) -> str | None:
    """As root, switch to the owner of the state directory when that is another user; the
    user's name (None: nothing switched). ConfigError when the switch is refused."""
    if os.geteuid() != 0:
        return None
    found = state_dir(env)
    if found is None:
        return None
    key, directory = found
    info = directory.stat()
    if info.st_uid == 0:
        return None
    try:
        user = pwd.getpwuid(info.st_uid)
        name, gid, groups = user.pw_name, user.pw_gid, os.getgrouplist(user.pw_name, user.pw_gid)
        home: str | None = user.pw_dir
    except KeyError:  # a uid without a name (a container's volume): its directory's group
        name, gid, groups, home = f"uid {info.st_uid}", info.st_gid, [info.st_gid], None
    try:
        unreadable = _unreadable_code(info.st_uid, gid, groups)
        if unreadable is not None:
            raise ConfigError(f"{key}: {directory} belongs to {name}, who cannot read this Python's files "
                              f"({unreadable}): run the command as {name} with a Python that user can run "
                              "(`make install` builds one from /usr/bin/python3)")
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(info.st_uid)
    except OSError as e:
        raise ConfigError(f"{key}: {directory} belongs to {name}, and root could not become {name} "
                          f"({e.strerror}): run the command as that user (sudo -u {name} ...)") from None
    if home is not None:
        os.environ["HOME"] = home  # as `sudo -u` sets it: libpq's ~/.pgpass is the user's, not root's
    return name


def _unreadable_code(uid: int, gid: int, groups: list[int]) -> str | None:
    """The first of the interpreter's and the venv's directories the user could not read, or
    None. Modules are imported lazily, so a switch to a user who cannot read them (a venv made
    from root's own Python) would end in a traceback later: tried with the effective ids,
    which, unlike the real ones, root can take back."""
    import sqlalchemy

    places = [os.path.dirname(os.__file__), os.path.dirname(os.path.dirname(sqlalchemy.__file__))]
    saved_groups = os.getgroups()
    os.setgroups(groups)
    os.setegid(gid)
    os.seteuid(uid)
    try:
        return next((p for p in places if not os.access(p, os.R_OK | os.X_OK, effective_ids=True)), None)
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(saved_groups)
