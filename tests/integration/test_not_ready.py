"""Not ready means 503, never a half answer: at start (gunicorn exits 78 with one line) and at run
time (the database away: every ACME endpoint answers 503 serverInternal with Retry-After, one log
line per outage, and the relay recovers by itself)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import requests
from acme import messages

from jackdaw import create_app, migrate, schema
from jackdaw.settings import Settings
from jackdaw.startup import CONFIG_EXIT
from tests.clients import _client_env, acme_account, new_csr
from tests.relay import BIN, PG_ADMIN, ROOT, Relay, offline_env, postgres_database
from tests.testbed import free_port

PROBLEM = "application/problem+json"
SERVER_INTERNAL = "urn:ietf:params:acme:error:serverInternal"


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A relay with no upstream CA to reach (it is not needed to be ready for clients)."""
    return offline_env(data_dir, RELAY_CERT_ENABLED="false", LOG_LEVEL="INFO", **extra)


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
    assert code == CONFIG_EXIT and len(lines) == 1, "\n".join(lines)
    assert f"directory {data} (owner root, mode 0700) cannot be entered by user nobody" in lines[0], lines[0]


# -- at run time: the database goes away and comes back -----------------------------------------

def _until(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _new_nonce_status(relay: Relay) -> int:
    return requests.head(f"{relay.url}/acme/new-nonce", timeout=10).status_code


def _assert_unavailable(resp: requests.Response) -> None:
    assert resp.status_code == 503, (resp.status_code, resp.text)
    assert int(resp.headers["Retry-After"]) > 0
    assert "Replay-Nonce" not in resp.headers
    if resp.request.method != "HEAD":
        assert resp.headers["Content-Type"] == PROBLEM
        assert resp.json()["type"] == SERVER_INTERNAL and resp.json()["status"] == 503


@contextmanager
def _relay(workdir: Path, env: dict[str, str]) -> Iterator[Relay]:
    # ready for clients without the upstream CA: wait for liveness, not /readyz
    with Relay(workdir, env, ready_path="/healthz") as relay:
        yield relay


def _outage_and_recovery(relay: Relay, away: Callable[[], None], back: Callable[[], None], says: str) -> None:
    client = acme_account(relay.directory_url)  # while the database is there
    _, csr = new_csr(["away.example.test"])
    away()
    _until("newNonce to answer 503", lambda: _new_nonce_status(relay) == 503)

    _assert_unavailable(requests.head(f"{relay.url}/acme/new-nonce", timeout=10))
    _assert_unavailable(requests.get(f"{relay.url}/acme/new-nonce", timeout=10))
    _assert_unavailable(requests.get(relay.directory_url, timeout=10))
    _assert_unavailable(requests.post(f"{relay.url}/acme/new-order", data=b"{}", timeout=10,
                                      headers={"Content-Type": "application/jose+json"}))
    with pytest.raises(messages.Error) as refused:  # a signed newOrder with the nonce it holds
        client.new_order(csr)
    assert refused.value.typ == SERVER_INTERNAL
    ready = requests.get(f"{relay.url}/readyz", timeout=30)
    assert ready.status_code == 503 and not ready.json()["checks"]["database"]["ok"], ready.text
    assert says in ready.json()["checks"]["database"]["reason"], ready.text

    back()
    _until("newNonce to answer 200 again", lambda: _new_nonce_status(relay) == 200)
    resp = requests.head(f"{relay.url}/acme/new-nonce", timeout=10)
    assert resp.headers["Replay-Nonce"]
    assert client.query_registration(client.net.account).body.status == "valid"
    _until("the end of the outage in the log", lambda: "database available again" in relay.log_tail(400))

    log = relay.log_tail(400)
    started = [line for line in log.splitlines() if "database unavailable" in line]
    assert len(started) == 1 and says in started[0], log  # one worker: one line per outage
    assert "Traceback" not in log, log


def test_sqlite_file_moved_away_and_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db, aside = data / "jackdaw.db", tmp_path / "jackdaw.db.aside"
    with _relay(tmp_path, _env(data)) as relay:
        _outage_and_recovery(relay, lambda: db.rename(aside), lambda: aside.rename(db), f"{db} is gone")
        assert not aside.exists() and db.stat().st_size > 0


@pytest.mark.postgres
def test_postgres_database_renamed_away_and_back(tmp_path: Path) -> None:
    with postgres_database() as url:
        name = url.rsplit("/", 1)[1]

        def admin(*statements: str) -> None:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                for statement in statements:
                    conn.execute(statement)

        def away() -> None:
            admin(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false',
                  f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
                  f'ALTER DATABASE "{name}" RENAME TO "{name}_away"',
                  f'ALTER DATABASE "{name}_away" WITH ALLOW_CONNECTIONS true')

        def back() -> None:
            admin(f'ALTER DATABASE "{name}_away" RENAME TO "{name}"')

        try:
            with _relay(tmp_path, _env(tmp_path / "data", DATABASE_URL=url)) as relay:
                _outage_and_recovery(relay, away, back, f'database "{name}" does not exist')
        finally:
            admin(f'DROP DATABASE IF EXISTS "{name}_away" WITH (FORCE)')


def test_certbot_is_told_503_not_missing_nonce(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with _relay(tmp_path, _env(data)) as relay:
        (data / "jackdaw.db").rename(tmp_path / "aside.db")
        _until("newNonce to answer 503", lambda: _new_nonce_status(relay) == 503)
        work = tmp_path / "certbot"
        proc = subprocess.run(
            [str(BIN / "certbot"), "register", "--non-interactive", "--agree-tos", "-m", "admin@example.test",
             "--server", relay.directory_url, "--config-dir", str(work / "config"), "--work-dir",
             str(work / "work"), "--logs-dir", str(work / "logs")],
            env=_client_env(), capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "MissingNonce" not in out and "the relay's database is unavailable; try again later" in out, out
    assert '"GET /directory HTTP/1.1" 503' in (work / "logs" / "letsencrypt.log").read_text(), out


def test_new_nonce_is_a_503_when_it_cannot_issue_a_nonce(tmp_path: Path) -> None:
    """The first request finds the database gone (no job thread noticed before): newNonce's 200
    without a Replay-Nonce was half an answer; now it is a 503, and the next try after the
    database is back is whole."""
    settings = Settings.parse(_env(tmp_path / "data"))
    migrate.upgrade(settings.database_url)
    client = create_app(settings).test_client()
    db, aside = tmp_path / "data" / "jackdaw.db", tmp_path / "aside.db"
    db.rename(aside)
    resp = client.head("/acme/new-nonce")
    assert resp.status_code == 503 and "Replay-Nonce" not in resp.headers, resp.headers
    assert int(resp.headers["Retry-After"]) > 0
    aside.rename(db)
    _until("a nonce again", lambda: client.head("/acme/new-nonce").status_code == 200)
    assert client.head("/acme/new-nonce").headers["Replay-Nonce"]


def test_an_unmigrated_database_is_a_503_until_it_is_migrated(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """Served without gunicorn's start-up check (another WSGI server, a test client): the schema
    is found missing on the first request, and the relay serves once `jackdaw db upgrade` ran."""
    settings = Settings.parse(_env(tmp_path / "data"))
    client = create_app(settings).test_client()
    for resp in (client.get("/directory"), client.get("/acme/new-nonce"), client.head("/acme/new-nonce")):
        assert resp.status_code == 503 and "Replay-Nonce" not in resp.headers, (resp.request.path, resp.headers)
    problem = client.get("/directory").get_json()
    assert problem["type"] == SERVER_INTERNAL, problem
    lines = [r.getMessage() for r in caplog.records if r.name == "jackdaw.outage"]
    assert len(lines) == 1 and "has no schema (never migrated): run `jackdaw db upgrade`" in lines[0], lines
    assert not [r for r in caplog.records if r.exc_info], "no traceback"

    migrate.upgrade(settings.database_url)
    assert client.get("/directory").status_code == 200
    assert client.head("/acme/new-nonce").headers["Replay-Nonce"]
    assert "database available again" in caplog.text


def test_sqlite_directory_closed_to_the_relay_names_it_and_the_user(shared_dir: Path) -> None:
    """As under systemd, the relay runs as its own user: its directory closed to it (chmod 000) is
    an outage whose one line names the directory, its owner and mode and the user; opened again,
    the relay serves by itself."""
    assert os.geteuid() == 0, "the test bed runs as root (make test); it starts gunicorn as nobody"
    nobody = pwd.getpwnam("nobody")
    data = shared_dir / "data"
    data.mkdir(mode=0o700)
    migrate.upgrade(f"sqlite:///{data / 'jackdaw.db'}")
    for path in (data, *data.iterdir()):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    env = {k: v for k, v in os.environ.items() if k not in ("DATA_DIR", "DATABASE_URL", "JACKDAW_ENV_FILE")}
    port = free_port()
    env.update({**_env(data), "JACKDAW_BIND": f"127.0.0.1:{port}", "PYTHONDONTWRITEBYTECODE": "1"})
    log_path = shared_dir / "jackdaw.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
                                 str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        def answers(path: str, status: int) -> Callable[[], bool]:
            def check() -> bool:
                assert proc.poll() is None, log_path.read_text()
                try:
                    return requests.head(url + path, timeout=10).status_code == status
                except requests.ConnectionError:
                    return False
            return check

        _until("the relay to start", answers("/acme/new-nonce", 200))
        data.chmod(0)
        _until("newNonce to answer 503", answers("/acme/new-nonce", 503))
        _assert_unavailable(requests.get(f"{url}/acme/new-nonce", timeout=10))
        data.chmod(0o700)
        _until("newNonce to answer 200 again", answers("/acme/new-nonce", 200))
    finally:
        data.chmod(0o700)
        proc.terminate()
        proc.wait(timeout=30)
    log_text = log_path.read_text()
    started = [line for line in log_text.splitlines() if "database unavailable" in line]
    assert len(started) == 1, log_text
    assert f"directory {data} (owner nobody, mode 0000) cannot be entered by user nobody" in started[0], started[0]
    assert "database available again" in log_text and "Traceback" not in log_text, log_text
