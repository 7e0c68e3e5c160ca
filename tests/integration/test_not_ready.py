"""Not ready means no half answer: at start, gunicorn exits 78 with one line."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jackdaw import migrate, schema
from jackdaw.startup import CONFIG_EXIT
from tests.relay import BIN, ROOT
from tests.testbed import free_port

PROBLEM = "application/problem+json"
SERVER_INTERNAL = "urn:ietf:params:acme:error:serverInternal"


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A relay with no upstream CA to reach (it is not needed to be ready for clients)."""
    return {
        "RELAY_DOMAIN": "relay.example.test",
        "ACME_EMAIL": "ops@example.test",
        "DNS_PROVIDER": "rfc2136",
        "RFC2136_NAMESERVER": "127.0.0.1:1",
        "RFC2136_TSIG_KEY": "k",
        "RFC2136_TSIG_SECRET": "c2VjcmV0c2VjcmV0",
        "LE_DIRECTORY": "https://127.0.0.1:1/directory",  # nothing listens there
        "RELAY_CERT_ENABLED": "false",
        "LOG_LEVEL": "INFO",
        "DATA_DIR": str(data_dir),
        **extra,
    }


def _gunicorn(env: dict[str, str], as_user: str | None = None) -> tuple[int, list[str]]:
    """gunicorn as systemd starts it (``as_user``: through setpriv, as the unit's User=)."""
    full = {k: v for k, v in os.environ.items() if k not in ("DATA_DIR", "DATABASE_URL", "JACKDAW_ENV_FILE")}
    full.update({**env, "JACKDAW_BIND": f"127.0.0.1:{free_port()}", "PYTHONDONTWRITEBYTECODE": "1"})
    argv = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"]
    if as_user is not None:
        user = pwd.getpwnam(as_user)
        argv = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *argv]
    proc = subprocess.run(argv, cwd=ROOT, env=full, capture_output=True, text=True, timeout=60)
    return proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()


# -- at start: gunicorn's master, before it binds ------------------------------------------------

def _missing(db: Path) -> None:
    pass


def _never_migrated(db: Path) -> None:
    db.touch()


def _behind(db: Path) -> None:
    migrate.upgrade(f"sqlite:///{db}", "0005")


STARTS = [(_missing, "does not exist"), (_never_migrated, "has no schema (never migrated)"),
          (_behind, f"is at schema revision 0005, this code needs {schema.HEAD}")]


@pytest.mark.parametrize(("prepare", "says"), STARTS, ids=["missing", "never-migrated", "behind"])
def test_gunicorn_refuses_an_unmigrated_database_in_one_line(tmp_path: Path, prepare: Callable[[Path], None],
                                                             says: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    prepare(data / "jackdaw.db")
    code, lines = _gunicorn(_env(data))
    assert code == CONFIG_EXIT, lines
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"jackdaw: database error: the SQLite database {data / 'jackdaw.db'}"), lines[0]
    assert says in lines[0] and "run `jackdaw db upgrade`" in lines[0], lines[0]
    assert not (data / "jackdaw.db-wal").exists(), "the check wrote nothing"


def test_gunicorn_names_the_path_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    code, lines = _gunicorn(_env(tmp_path / "file" / "data"))
    assert code == CONFIG_EXIT and len(lines) == 1, lines
    assert f"{tmp_path / 'file'} is not a directory" in lines[0], lines[0]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user may enter (pytest's own are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="jackdaw-not-ready-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_gunicorn_names_owner_mode_and_user_of_a_database_it_cannot_open(shared_dir: Path) -> None:
    """A root `jackdaw db upgrade` leaves root's files: the service's user is told whose they are
    and what to run (root would open anything: the service runs as another user here)."""
    assert os.geteuid() == 0, "the test bed runs as root (make test); it starts gunicorn as nobody"
    data = shared_dir / "data"
    data.mkdir(mode=0o755)
    db = data / "jackdaw.db"
    migrate.upgrade(f"sqlite:///{db}")
    code, lines = _gunicorn(_env(data), as_user="nobody")
    assert code == CONFIG_EXIT and len(lines) == 1, lines
    line = lines[0]
    assert f"cannot open the SQLite database {db} as user nobody" in line, line
    assert "jackdaw.db is owner root, mode 0600" in line, line
    assert f"run `chown nobody: {db}" in line, line

    data.chmod(0o700)  # now the directory is in the way, and named as such
    code, lines = _gunicorn(_env(data), as_user="nobody")
    assert code == CONFIG_EXIT and len(lines) == 1, lines
    assert f"directory {data} (owner root, mode 0700) cannot be entered by user nobody" in lines[0], lines[0]
