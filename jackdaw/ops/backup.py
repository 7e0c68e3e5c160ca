"""`jackdaw backup FILE` and `jackdaw restore FILE`: the whole database, as the relay sees it.

A backup holds the upstream account key and every EAB HMAC key, so it is created 0600 before
a byte is written (never world-readable for an instant) and never replaces a file unless asked.

- SQLite: sqlite3's online backup API, one step: a consistent snapshot while the relay runs
  (WAL readers do not block writers); restored the same way, into a 0600 file.
- PostgreSQL: ``pg_dump --format=custom`` written into the 0600 file (its stdout), restored
  with ``pg_restore --clean --if-exists --no-owner`` in one transaction. The password goes to
  the tools in PGPASSWORD, never on a command line.

After a restore the schema is brought to head (alembic), as `jackdaw db upgrade` would.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from jackdaw.ops.commands import Failed, _guard, _sqlite_path

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_CUSTOM_MAGIC = b"PGDMP"
#: what pg_dump / pg_restore may take at most (a large database, a slow disk)
TOOL_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Done:
    #: "sqlite /path/jackdaw.db" or "postgresql host/db": what was read or written
    database: str
    file: Path
    size: int


@contextmanager
def _private_file(dest: Path, force: bool) -> Iterator[tuple[int, Path]]:
    """A new file beside ``dest``, mode 0600 from its creation; moved onto ``dest`` only when the
    body succeeded (no half backup under the real name), without replacing one unless ``force``."""
    if dest.is_dir():
        raise Failed(f"{dest} is a directory: name the backup file")
    if dest.exists() and not force:
        raise Failed(f"{dest} exists: choose another name, or --force to replace it")
    if not dest.parent.is_dir():
        raise Failed(f"no directory {dest.parent} for {dest.name}")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        yield fd, tmp
        os.fsync(fd)
        os.close(fd)
        fd = -1
        if force:
            os.replace(tmp, dest)
        else:
            try:
                os.link(tmp, dest)  # fails if someone made dest meanwhile: never overwritten
            except FileExistsError:
                raise Failed(f"{dest} exists: choose another name, or --force to replace it") from None
            os.unlink(tmp)
    finally:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)


def _describe(url: str) -> str:
    path = _sqlite_path(url)
    if path is not None:
        return f"sqlite {path}"
    parsed = make_url(url)
    return f"postgresql {parsed.host or 'localhost'}{f':{parsed.port}' if parsed.port else ''}/{parsed.database}"


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise Failed(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return found


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password, and the environment that carries it."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(argv: list[str], env: dict[str, str], stdout: int | None = None) -> None:
    proc = subprocess.run(argv, env=env, stdout=stdout if stdout is not None else subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=TOOL_TIMEOUT, check=False)
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        raise Failed(f"{Path(argv[0]).name} failed: {lines[0] if lines else f'exit status {proc.returncode}'}")


# -- backup ----------------------------------------------------------------------------------

def backup(url: str, dest: Path, force: bool = False) -> Done:
    from jackdaw.ops.commands import require_database

    require_database(url)
    source = _sqlite_path(url)
    with _private_file(dest, force) as (fd, tmp):
        if source is not None:
            _sqlite_backup(source, tmp)
        else:
            libpq, env = _libpq(url)
            _run([_pg_tool("pg_dump"), "--format=custom", "--no-password", f"--dbname={libpq}"], env, stdout=fd)
        size = os.fstat(fd).st_size
    if source is None:
        _run([_pg_tool("pg_restore"), "--list", str(dest)], dict(os.environ))  # a readable archive
    return Done(_describe(url), dest, size)


def _sqlite_backup(source: Path, target: Path) -> None:
    """Copy ``source`` into the empty 0600 file ``target`` (SQLite gives its journal the same
    mode), checked afterwards."""
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src, \
            closing(sqlite3.connect(target)) as dst:
        src.backup(dst)  # one step: a consistent snapshot, however busy the relay is
        dst.execute("PRAGMA journal_mode=DELETE")  # a backup is one file: no -wal beside it
        [(verdict,)] = dst.execute("PRAGMA quick_check").fetchall()
        if verdict != "ok":
            raise Failed(f"the copy of {source} fails SQLite's check: {verdict}")


# -- restore ---------------------------------------------------------------------------------

def _has_data(url: str) -> bool:
    """Any row in any table but alembic's version: a relay's data that a restore would replace."""
    from jackdaw.db import make_engine

    path = _sqlite_path(url)
    if path is not None and (not path.is_file() or path.stat().st_size == 0):
        return False
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            names = [n for n in inspect(conn).get_table_names() if n != "alembic_version"]
            return any(conn.execute(text(f'SELECT 1 FROM "{n}" LIMIT 1')).first() for n in names)
    finally:
        engine.dispose()


def _kind(source: Path) -> str:
    try:
        with open(source, "rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError as e:
        raise Failed(f"cannot read {source}: {e.strerror}") from None
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_CUSTOM_MAGIC):
        return "postgresql"
    raise Failed(f"{source} is not a `jackdaw backup` (neither an SQLite database nor a pg_dump custom archive)")


def restore(url: str, source: Path, force: bool = False) -> Done:
    from jackdaw import migrate

    kind, target = _kind(source), _sqlite_path(url)
    if kind != ("sqlite" if target is not None else "postgresql"):
        raise Failed(f"{source} is a {kind} backup, but DATABASE_URL is {_describe(url).split()[0]}: restore it "
                     "into the same kind of database it came from")
    if _has_data(url) and not force:
        raise Failed(f"{_describe(url)} holds data: stop the relay, and restore over it with --force")
    if target is not None:
        _sqlite_restore(source, target)
    else:
        libpq, env = _libpq(url)
        _run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
              "--exit-on-error", "--no-password", f"--dbname={libpq}", str(source)], env)
    migrate.upgrade(url)
    return Done(_describe(url), source, source.stat().st_size)


def _sqlite_restore(source: Path, target: Path) -> None:
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src:
        [(verdict,)] = src.execute("PRAGMA quick_check").fetchall()
        if verdict != "ok":
            raise Failed(f"{source} fails SQLite's check: {verdict}")
        if not src.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone():
            raise Failed(f"{source} is an SQLite database, but not Jackdaw's (no alembic_version)")
        if not target.parent.is_dir():
            raise Failed(f"the database's directory {target.parent} does not exist (DATA_DIR / DATABASE_URL)")
        if not target.exists():
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.chmod(target, 0o600)  # it holds the upstream account key; SQLite's -wal/-shm copy this mode
        with closing(sqlite3.connect(target, timeout=5.0)) as dst:
            try:
                src.backup(dst)
            except sqlite3.OperationalError as e:  # the relay still writing: "database is locked"
                raise Failed(f"cannot write {target}: {e} (stop the relay first)") from None
            dst.execute("PRAGMA journal_mode=WAL")  # as the relay keeps it


# -- the CLI's commands ------------------------------------------------------------------------

@contextmanager
def _one_line() -> Iterator[None]:
    """File-system, SQLite and tool failures as one line for the operator, never a traceback."""
    try:
        yield
    except OSError as e:
        raise Failed(f"{e.filename or 'file'}: {e.strerror or e}") from None
    except sqlite3.Error as e:
        raise Failed(f"SQLite: {e}") from None
    except subprocess.TimeoutExpired as e:
        raise Failed(f"{Path(str(e.cmd[0])).name} did not finish within {e.timeout:g} s") from None


@_guard
def backup_command(url: str, dest: str, force: bool = False) -> int:
    with _one_line():
        done = backup(url, Path(dest), force=force)
    print(f"backed up {done.database} to {done.file} ({done.size} bytes, mode 0600; it holds the upstream "
          "account key and the EAB keys: keep it like them)")
    return 0


@_guard
def restore_command(url: str, source: str, force: bool = False) -> int:
    with _one_line():
        done = restore(url, Path(source), force=force)
    print(f"restored {done.file} into {done.database}; schema at head")
    return 0
