"""The CLI reads the unit's environment file, and fails in one line without creating a database.

Every command runs as the operator runs it (`python -m jackdaw.cli`, a fresh process, cwd a
scratch directory), so a traceback or a stray `data/jackdaw.db` would show.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jackdaw import __version__, migrate
from tests.relay import ROOT
from tests.testbed import free_port

REQUIRED = {
    "RELAY_DOMAIN": "relay.example.test",
    "ACME_EMAIL": "ops@example.test",
    "DNS_PROVIDER": "none",
    "UPSTREAM_CHALLENGE": "dns-persist-01",
    "LE_DIRECTORY": "https://127.0.0.1:9/directory",
}


def jackdaw(cwd: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("DATA_DIR", "DATABASE_URL", "JACKDAW_ENV_FILE") and k not in REQUIRED}
    return subprocess.run([sys.executable, "-m", "jackdaw.cli", *argv], cwd=cwd, capture_output=True, text=True,
                          env={**clean, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=120)


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], proc.stdout + proc.stderr
    return lines[0]


def env_file(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def test_version(tmp_path: Path) -> None:
    proc = jackdaw(tmp_path, "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"jackdaw {__version__}"


def test_the_env_file_alone_names_the_database(tmp_path: Path) -> None:
    """The bug: DATA_DIR only in the unit's Environment=, so the CLI looked in ./data."""
    data = tmp_path / "state"
    data.mkdir()
    path = env_file(tmp_path / "jackdaw.env", {**REQUIRED, "DATA_DIR": str(data)})
    work = tmp_path / "checkout"
    work.mkdir()
    # a developer's .env in the working directory and a stray DATA_DIR in the shell: both ignored
    env_file(work / ".env", {"DATA_DIR": str(tmp_path / "dev")})
    stray = {"DATA_DIR": str(tmp_path / "elsewhere")}

    upgrade = jackdaw(work, "--env-file", str(path), "db", "upgrade", env=stray)
    assert upgrade.returncode == 0, upgrade.stderr
    assert (data / "jackdaw.db").is_file()
    for argv in (["--env-file", str(path), "accounts"], ["accounts"]):
        proc = jackdaw(work, *argv, env={**stray, "JACKDAW_ENV_FILE": str(path)})
        assert (proc.returncode, proc.stdout.strip()) == (0, "no accounts"), proc.stderr
    proc = jackdaw(work, "relay-cert", "status", env={"JACKDAW_ENV_FILE": str(path)})
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 1), proc.stderr  # 1: no certificate yet
    assert not (work / "data").exists() and not (tmp_path / "dev").exists() and not (tmp_path / "elsewhere").exists()

    # without it, the checkout's .env applies (the development default), and says where it looked
    proc = jackdaw(work, "accounts", env=REQUIRED)
    assert proc.returncode == 1 and "no --env-file" in one_line(proc) and str(tmp_path / "dev") in proc.stderr


def test_an_unreadable_env_file_is_a_configuration_error(tmp_path: Path) -> None:
    proc = jackdaw(tmp_path, "--env-file", str(tmp_path / "absent.env"), "accounts")
    assert proc.returncode == 2 and "JACKDAW_ENV_FILE" in one_line(proc) and "absent.env" in proc.stderr


@pytest.mark.parametrize("argv", [["accounts"], ["certificates"], ["relay-cert", "status"], ["relay-cert", "renew"],
                                  ["db", "current"], ["budget"], ["orders"]])
def test_no_command_creates_a_database_by_accident(tmp_path: Path, argv: list[str]) -> None:
    proc = jackdaw(tmp_path, *argv, env=REQUIRED)
    assert proc.returncode == 1, proc.stderr
    assert "jackdaw db upgrade" in one_line(proc)
    assert list(tmp_path.iterdir()) == [], "looking created something"


def test_db_upgrade_makes_no_directory_but_the_default(tmp_path: Path) -> None:
    missing = tmp_path / "var" / "lib" / "jackdw"  # a typo: a second, empty database
    proc = jackdaw(tmp_path, "db", "upgrade", env={"DATA_DIR": str(missing)})
    assert proc.returncode == 1 and str(missing) in one_line(proc) and "does not exist" in proc.stderr
    assert not (tmp_path / "var").exists()
    proc = jackdaw(tmp_path, "db", "upgrade")  # nothing set: ./data of a checkout is ours
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "data" / "jackdaw.db").is_file() and (tmp_path / "data").stat().st_mode & 0o077 == 0


def test_db_current_exits_1_unless_at_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0008")
    proc = jackdaw(tmp_path, "db", "current", env={"DATABASE_URL": url})
    assert proc.returncode == 1 and "NOT at head" in one_line(proc) and "0008" in proc.stderr
    assert jackdaw(tmp_path, "db", "upgrade", env={"DATABASE_URL": url}).returncode == 0
    proc = jackdaw(tmp_path, "db", "current", env={"DATABASE_URL": url})
    assert proc.returncode == 0 and "at head" in one_line(proc)


@pytest.mark.parametrize("argv", [["db", "upgrade"], ["db", "current"], ["accounts"], ["relay-cert", "status"],
                                  ["check"]])
def test_an_unsupported_database_is_one_line(tmp_path: Path, argv: list[str]) -> None:
    proc = jackdaw(tmp_path, *argv, env={**REQUIRED, "DATABASE_URL": "mysql://root:pw@localhost/jackdaw"})
    line = one_line(proc)
    assert proc.returncode == 2 and "DATABASE_URL" in line and "pw" not in line


@pytest.mark.parametrize("argv", [["db", "upgrade"], ["db", "current"], ["accounts"], ["relay-cert", "status"],
                                  ["eab", "list"]])
def test_postgresql_down_is_one_line(tmp_path: Path, argv: list[str]) -> None:
    url = f"postgresql+psycopg://jackdaw:secret-pw@127.0.0.1:{free_port()}/jackdaw"  # nothing listens
    proc = jackdaw(tmp_path, *argv, env={**REQUIRED, "DATABASE_URL": url})
    line = one_line(proc)
    assert proc.returncode == 1 and line.startswith("database error:") and "refused" in line, line
    assert "secret-pw" not in line
