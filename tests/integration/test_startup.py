"""The relay starts without its upstream CA, and refuses to start on bad settings."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from jackdaw import create_app, migrate
from jackdaw.dns.base import ConfigError
from jackdaw.settings import Settings
from tests.relay import offline_env


def _env(tmp_path: Path) -> dict[str, str]:
    return offline_env(tmp_path)


def test_serves_clients_while_upstream_is_unreachable(tmp_path: Path) -> None:
    settings = Settings.parse(_env(tmp_path))
    migrate.upgrade(settings.database_url)
    client = create_app(settings).test_client()
    directory = client.get("/directory")
    assert directory.status_code == 200
    assert directory.get_json()["newNonce"] == "http://localhost/acme/new-nonce"
    assert client.head("/acme/new-nonce").headers["Replay-Nonce"]
    assert not (tmp_path / "upstream-account.key").exists(), "the upstream account is registered lazily"


@pytest.mark.parametrize("missing", ["RELAY_DOMAIN", "ACME_EMAIL", "DNS_PROVIDER", "RFC2136_NAMESERVER"])
def test_missing_setting_is_named(tmp_path: Path, missing: str) -> None:
    env = _env(tmp_path)
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        create_app(Settings.parse(env))


def test_the_database_jackdaw_creates_is_its_owners_alone(tmp_path: Path) -> None:
    """DATA_DIR 0700, jackdaw.db and its -wal / -shm 0600, whatever the umask (0022 here)."""
    old = os.umask(0o022)
    try:
        settings = Settings.parse({**_env(tmp_path), "DATA_DIR": str(tmp_path / "data")})
        migrate.upgrade(settings.database_url)
        client = create_app(settings).test_client()
        assert client.head("/acme/new-nonce").status_code == 200  # a write: the WAL exists now
    finally:
        os.umask(old)
    data = tmp_path / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir()}
    assert {"jackdaw.db", "jackdaw.db-wal", "jackdaw.db-shm"} <= set(files), files
    assert all(mode == 0o600 for name, mode in files.items() if name.startswith("jackdaw.db")), files


# -- through gunicorn, as systemd starts it -----------------------------------------------------

BAD_SETTINGS = [
    ("DNS_PROVIDER", "nonsense", "unknown provider"),
    ("CHALLENGE_HTTP_PORT", "abc", "whole number"),
    ("RELAY_DOMAIN", "", "required"),
    ("RFC2136_TSIG_SECRET", "not base64!", "base64"),
    ("DATABASE_URL", "mysql://root:pw@localhost/jackdaw", "only sqlite"),
    ("RELAY_DOMAIN", "https://x.example.com/", "write RELAY_DOMAIN=x.example.com"),
    ("ACME_EMAIL", "nonsense", "e-mail address"),
    ("ALLOWED_DOMAINS", "*.example.com", "ALLOWED_DOMAINS=example.com"),
    # gunicorn's own, parsed by jackdaw.serving before gunicorn sees them (was: a ValueError traceback)
    ("JACKDAW_WORKERS", "two", "whole number"),
    ("JACKDAW_THREADS", "0", "at least 1"),
    ("JACKDAW_BIND", "localhost", "host:port"),
]


@pytest.mark.parametrize(("key", "value", "says"), BAD_SETTINGS, ids=[f"{k}={v}" for k, v, _ in BAD_SETTINGS])
def test_gunicorn_refuses_a_bad_setting_in_one_line(tmp_path: Path, key: str, value: str, says: str) -> None:
    """One line naming the variable, and 78: the status deploy/jackdaw.service does not restart."""
    from jackdaw.startup import CONFIG_EXIT
    from tests.relay import BIN, ROOT
    from tests.testbed import free_port

    env = {k: v for k, v in os.environ.items() if k not in ("DATA_DIR", "DATABASE_URL", "JACKDAW_ENV_FILE")}
    env.update({**_env(tmp_path), "JACKDAW_BIND": f"127.0.0.1:{free_port()}", key: value})
    proc = subprocess.run([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == CONFIG_EXIT, proc.stdout + proc.stderr
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"jackdaw: configuration error: {key}:") and says in lines[0], lines[0]
    assert "pw@" not in lines[0]


def test_gunicorn_warns_of_mistyped_settings_and_makes_the_metrics_directory(tmp_path: Path) -> None:
    """Two workers (the app preloaded in the master) with a PROMETHEUS_MULTIPROC_DIR that does not
    exist yet (was: FileNotFoundError at preload), and a settings file and an environment with a
    mistyped name each: the relay starts, and the master warns once per name."""
    import requests

    from tests.relay import Relay

    settings_file = tmp_path / "jackdaw.env"
    settings_file.write_text("".join(f"{k}={v}\n" for k, v in _env(tmp_path / "data").items())
                             + "EAB_REQUIERD=true\n")
    (tmp_path / "data").mkdir()
    metrics = tmp_path / "run" / "prometheus"
    env = {"JACKDAW_ENV_FILE": str(settings_file), "ALLOWED_DOMIANS": "example.test", "JACKDAW_WORKERS": "2",
           "JACKDAW_THREADS": "2", "PROMETHEUS_MULTIPROC_DIR": str(metrics), "DATA_DIR": str(tmp_path / "data")}
    with Relay(tmp_path / "relay", env, ready_path="/healthz") as relay:
        assert requests.get(f"{relay.url}/healthz", timeout=10).status_code == 200
        log = relay.log_path.read_text()
    assert metrics.is_dir()
    warnings = [line for line in log.splitlines() if line.startswith("jackdaw: warning:")]
    assert sorted(warnings) == [
        "jackdaw: warning: ALLOWED_DOMIANS: not a Jackdaw setting (in the environment); did you mean ALLOWED_DOMAINS?",
        f"jackdaw: warning: EAB_REQUIERD: not a Jackdaw setting (in {settings_file}); did you mean EAB_REQUIRED?",
    ], log
