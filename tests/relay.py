"""Run Jackdaw for real: alembic upgrade, then gunicorn with the project's gunicorn.conf.py.

Used by e2e tests, benchmarks and `make demo`; listens on loopback only and stops what it starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg
import requests

from tests.testbed import Bind, Pebble, free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def offline_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A relay's settings with no upstream CA and no DNS server to reach (neither is needed to
    start it, to check it, or to answer clients until an order goes upstream)."""
    return {
        "RELAY_DOMAIN": "relay.example.test",
        "ACME_EMAIL": "ops@example.test",
        "DNS_PROVIDER": "rfc2136",
        "RFC2136_NAMESERVER": "127.0.0.1:1",
        "RFC2136_TSIG_KEY": "k",
        "RFC2136_TSIG_SECRET": "c2VjcmV0c2VjcmV0",
        "LE_DIRECTORY": "https://127.0.0.1:1/directory",  # nothing listens there
        "DATA_DIR": str(data_dir),
        **extra,
    }


def relay_env(workdir: Path, bind: Bind, pebble: Pebble, challenge_port: int, **extra: str) -> dict[str, str]:
    """Settings for a relay that issues from this Pebble via this BIND."""
    env = {
        "RELAY_DOMAIN": "relay.example.test",
        "ACME_EMAIL": "ops@example.test",
        "LE_DIRECTORY": pebble.directory_url,
        "UPSTREAM_CA_BUNDLE": str(pebble.ca_pem),
        "DNS_RESOLVER": bind.nameserver,
        "DNS_AUTHORITATIVE_PORT": str(bind.port),
        "DNS_PROPAGATION_TIMEOUT": "30",
        "CHALLENGE_HTTP_PORT": str(challenge_port),
        "CHALLENGE_TIMEOUT": "2",
        "CHALLENGE_RETRIES": "2",
        "CHALLENGE_RETRY_DELAY": "0.2",
        "CHALLENGE_ALLOW_LOOPBACK": "true",
        "DATA_DIR": str(workdir / "data"),
        "LOG_LEVEL": "INFO",
        # the relay's own certificate stays off unless a test asks for it (tests/e2e/test_nginx.py)
        "RELAY_CERT_ENABLED": "false",
        **bind.env(),
    }
    env.update(extra)
    return env


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the local PostgreSQL, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"jackdaw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Relay:
    """Jackdaw under gunicorn on 127.0.0.1:<port>."""

    def __init__(self, workdir: Path, env: Mapping[str, str], port: int | None = None,
                 ready_path: str = "/readyz", never_ready_if: str | None = None) -> None:
        self.workdir = workdir
        #: a relay meant never to be ready: start() gives up as soon as its log says this
        self.never_ready_if = never_ready_if
        #: what start() waits for: /readyz (database, schema, upstream), or /healthz for a
        #: relay whose upstream is meant to be down
        self.ready_path = ready_path
        self.port = port or free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("REQUESTS_CA", "SSL_CERT", "CURL_CA"))}
        self.env.update(env)
        self.env["JACKDAW_BIND"] = f"127.0.0.1:{self.port}"
        self.log_path = workdir / "jackdaw.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def directory_url(self) -> str:
        return f"{self.url}/directory"

    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.env.get("DATA_DIR"):  # `db upgrade` makes no directory: systemd's StateDirectory= would
            Path(self.env["DATA_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
        subprocess.run([str(BIN / "python"), "-m", "jackdaw.cli", "db", "upgrade"], cwd=ROOT, env=self.env,
                       check=True, capture_output=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 30
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.log_tail()}")
            try:
                # ready = database, schema and upstream (Pebble) usable, as a load balancer sees it
                resp = requests.get(f"{self.url}{self.ready_path}", timeout=10)
                if resp.status_code == 200:
                    return self
                last = f"{self.ready_path} {resp.status_code}: {resp.text}"
            except requests.RequestException:
                pass
            if self.never_ready_if and self.never_ready_if in self.log_tail():
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not become ready ({last}):\n{self.log_tail()}")

    def cli(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`jackdaw ARGV...` as the operator runs it, with this relay's settings."""
        return subprocess.run([str(BIN / "python"), "-m", "jackdaw.cli", *argv], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=25)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
