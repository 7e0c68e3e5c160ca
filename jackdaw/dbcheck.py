"""Can this process use its database? One line that says why not and what to run.

gunicorn's master asks before it binds (jackdaw.startup: exit 78), and a running relay asks
while its database is away (jackdaw.outage). SQLite's own word, "unable to open database file",
says nothing of whose file it is: for SQLite the line names the file (or the directory in the
way), its owner and mode, the user this process runs as and the command that fixes it; for
PostgreSQL the host and database (never the password) and the server's words.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.pool import NullPool

from jackdaw import schema
from jackdaw.db import CONNECT_TIMEOUT, sqlite_connect, sqlite_path


def problem_with(engine: Engine) -> str | None:
    """None when the database opens and its schema is at ``schema.HEAD``; else one line."""
    try:
        revision = schema.current(engine)
    except Exception as exc:  # whatever the driver or the file system says is the answer
        return _cannot_open(str(engine.url), exc)
    if revision != schema.HEAD:
        return _not_at_head(str(engine.url), revision)
    return None


def problem_at_start(url: str) -> str | None:
    """``problem_with`` for a URL, creating nothing (no file, no directory, no pool)."""
    path = sqlite_path(url)
    if path is not None:
        # an unreadable file is reported with its owner and mode before SQLite tries it
        found = sqlite_access(Path(path))
        if found is not None:
            return found
        engine = create_engine(url, poolclass=NullPool, creator=lambda: sqlite_connect(path))
    else:
        engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT})
    try:
        return problem_with(engine)
    finally:
        engine.dispose()


def _cannot_open(url: str, exc: BaseException) -> str:
    found = words(exc)
    path = sqlite_path(url)
    if path is None:
        return f"cannot open {_where(url)}: {found}"
    described = f"cannot open {_where(url)} ({_describe(Path(path))}) as {running_as()}: {found}"
    return sqlite_access(Path(path), running=True) or described


def _not_at_head(url: str, revision: str | None) -> str:
    where = _where(url)
    if revision is None:
        return f"{where} has no schema (never migrated): run `jackdaw db upgrade`"
    if revision.isdigit() and schema.HEAD.isdigit() and int(revision) > int(schema.HEAD):
        return (f"{where} is at schema revision {revision}, newer than this code's {schema.HEAD}: "
                "a newer release migrated it; run that release")
    return f"{where} is at schema revision {revision}, this code needs {schema.HEAD}: run `jackdaw db upgrade`"


def _where(url: str) -> str:
    path = sqlite_path(url)
    if path is not None:
        return f"the SQLite database {path}"
    parsed = make_url(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"the PostgreSQL database {parsed.database} on {parsed.host or 'localhost'}{port}"


def words(exc: BaseException) -> str:
    """The driver's message on one line (psycopg's spans two), without SQLAlchemy's decorations."""
    text = str(getattr(exc, "orig", None) or exc)
    return " ".join(text.split()) or type(exc).__name__


def running_as() -> str:
    """The user this process runs as, for a line an operator reads."""
    return f"user {_name(os.geteuid())}"


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _describe(path: Path) -> str:
    try:
        st = path.stat()
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    return f"owner {_name(st.st_uid)}, mode {stat.S_IMODE(st.st_mode):04o}"


def _may(path: Path, mode: int) -> bool:
    return os.access(path, mode, effective_ids=os.access in os.supports_effective_ids)


def sqlite_access(path: Path, running: bool = False, missing_ok: bool = False) -> str | None:
    """Why this user cannot open ``path`` read-write (with its -wal, -shm and -writer), or None.
    ``running``: the relay opened it before, so a missing file was removed or moved away.
    ``missing_ok``: a missing file is fine where this user may create it (`jackdaw check`)."""
    user, name = running_as(), _name(os.geteuid())  # name: what chown takes
    for directory in reversed(path.parents):
        if not directory.exists():
            return (f"cannot open the SQLite database {path}: its directory {directory} does not exist "
                    "(DATA_DIR / DATABASE_URL): create it or correct the setting")
        if not directory.is_dir():
            return (f"cannot open the SQLite database {path}: {directory} is not a directory "
                    "(DATA_DIR / DATABASE_URL): correct the setting")
        if not _may(directory, os.X_OK):
            return (f"cannot open the SQLite database {path}: directory {directory} ({_describe(directory)}) "
                    f"cannot be entered by {user}: run `chown {name}: {directory}` or widen its mode")
    directory = path.parent
    if not path.exists() and running:
        return (f"the SQLite database {path} is gone (removed or moved away while the relay runs; "
                f"directory {directory}: {_describe(directory)}): put it back")
    if not path.exists() and not missing_ok:
        return (f"the SQLite database {path} does not exist (directory {directory}: {_describe(directory)}; "
                f"the relay runs as {user}): run `jackdaw db upgrade` as {user}")
    # SQLite in WAL mode writes beside the file: -wal, -shm, and jackdaw.db's writer queue -writer
    siblings = [path, *(Path(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-writer"))]
    blocked = [p for p in siblings if p.exists() and not _may(p, os.R_OK | os.W_OK)]
    if blocked:
        return (f"cannot open the SQLite database {path} as {user}: "
                + "; ".join(f"{p.name} is {_describe(p)}" for p in blocked)
                + f": run `chown {name}: {' '.join(str(p) for p in blocked)}`")
    if not _may(directory, os.W_OK | os.X_OK):
        return (f"cannot open the SQLite database {path} as {user}: its directory {directory} ({_describe(directory)}) "
                f"is not writable, and SQLite writes its -wal and -shm files there: run `chown {name}: {directory}`")
    return None
