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


def jackdaw(cwd: Path, *argv: str, env: dict[str, str] | None = None,
            default_env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as a fresh process; ``default_env_file`` stands in for /etc/jackdaw/jackdaw.env
    (this machine's own is never touched: other tests run beside these)."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("DATA_DIR", "DATABASE_URL", "JACKDAW_ENV_FILE") and k not in REQUIRED}
    command = [sys.executable, "-m", "jackdaw.cli", *argv]
    if default_env_file is not None:
        command = [sys.executable, "-c", DEFAULT_SHIM, str(default_env_file), *argv]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                          env={**clean, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=120)


DEFAULT_SHIM = """
import sys
from jackdaw import envfile
envfile.DEFAULT_ENV_FILE = sys.argv.pop(1)
from jackdaw.cli import main
sys.exit(main())
"""


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], proc.stdout + proc.stderr
    return lines[0]


def unsaid(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """``proc`` without the line a changing command starts with ("jackdaw: settings from ...")."""
    stderr = "".join(line for line in proc.stderr.splitlines(keepends=True) if not line.startswith("jackdaw: settings"))
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout, stderr)


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


DATABASE_COMMANDS = [["accounts"], ["certificates"], ["relay-cert", "status"], ["relay-cert", "renew"],
                     ["db", "current"], ["budget"], ["orders"], ["eab", "add", "team-a", "--allow", "*.example.test"],
                     ["db", "upgrade"], ["relay-cert", "placeholder"]]


@pytest.mark.parametrize("argv", DATABASE_COMMANDS, ids=" ".join)
def test_without_a_named_database_nothing_is_created(tmp_path: Path, argv: list[str]) -> None:
    """No settings file and no DATA_DIR: one line saying so, and no ./data (the bug: `db upgrade`
    made one, `eab add` wrote a key there, and the relay never saw it)."""
    proc = jackdaw(tmp_path, *argv, env=REQUIRED)
    line = one_line(proc)
    assert proc.returncode == 2 and line.startswith("configuration error: DATA_DIR: not set"), line
    assert "no settings file" in line and "jackdaw db upgrade" not in line
    assert list(tmp_path.iterdir()) == [], "looking created something"


@pytest.mark.parametrize("argv", DATABASE_COMMANDS[:7], ids=" ".join)
def test_no_command_but_db_upgrade_creates_the_database(tmp_path: Path, argv: list[str]) -> None:
    data = tmp_path / "state"
    data.mkdir()
    proc = jackdaw(tmp_path, *argv, env={**REQUIRED, "DATA_DIR": str(data)})
    assert proc.returncode == 1, proc.stderr
    assert "jackdaw db upgrade" in one_line(unsaid(proc))
    assert list(data.iterdir()) == [], "looking created something"


def test_the_placeholder_needs_a_named_directory(tmp_path: Path) -> None:
    """DATABASE_URL alone names no directory: the certificate would have gone to ./data/tls."""
    env = {**REQUIRED, "DATABASE_URL": f"sqlite:///{tmp_path / 'elsewhere.db'}"}
    proc = jackdaw(tmp_path, "relay-cert", "placeholder", env=env)
    assert proc.returncode == 2 and one_line(proc).startswith("configuration error: RELAY_CERT_DIR: not set")
    assert list(tmp_path.iterdir()) == []
    proc = jackdaw(tmp_path, "relay-cert", "placeholder", env={**env, "RELAY_CERT_ENABLED": "false"})
    assert proc.returncode == 0 and "nothing written" in proc.stdout, proc.stderr
    proc = jackdaw(tmp_path, "relay-cert", "placeholder", env={**env, "RELAY_CERT_DIR": str(tmp_path / "tls")})
    assert proc.returncode == 0 and (tmp_path / "tls" / "fullchain.pem").is_file(), proc.stderr


def test_db_upgrade_makes_no_directory(tmp_path: Path) -> None:
    missing = tmp_path / "var" / "lib" / "jackdw"  # a typo: a second, empty database
    proc = jackdaw(tmp_path, "db", "upgrade", env={"DATA_DIR": str(missing)})
    assert proc.returncode == 1 and str(missing) in proc.stderr and "does not exist" in proc.stderr
    assert not (tmp_path / "var").exists()


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
    if argv == ["db", "upgrade"]:  # a changing command first says where it acts, password masked
        said = proc.stderr.splitlines()[0]
        assert said.startswith("jackdaw: settings from the environment") and "jackdaw:****@" in said, said
        assert "secret-pw" not in said
        proc = unsaid(proc)
    line = one_line(proc)
    assert proc.returncode == 1 and line.startswith("database error:") and "refused" in line, line
    assert "secret-pw" not in line


def test_the_units_settings_file_is_the_default(tmp_path: Path) -> None:
    """No --env-file and no JACKDAW_ENV_FILE: the CLI reads the unit's file when it exists, and
    every changing command says which file and which database it uses."""
    data = tmp_path / "state"
    data.mkdir()
    unit_file = env_file(tmp_path / "jackdaw.env", {**REQUIRED, "DATA_DIR": str(data)})
    stray = {"DATA_DIR": str(tmp_path / "elsewhere")}  # the file wins, as under systemd
    said = f"jackdaw: settings from {unit_file}, database sqlite:///{data}/jackdaw.db"

    upgrade = jackdaw(tmp_path, "db", "upgrade", env=stray, default_env_file=unit_file)
    assert upgrade.returncode == 0 and upgrade.stderr.strip() == said, upgrade.stderr
    add = jackdaw(tmp_path, "eab", "add", "team-a", "--allow", "*.example.test", env=stray,
                  default_env_file=unit_file)
    assert add.returncode == 0 and add.stderr.strip() == said, add.stderr
    listed = jackdaw(tmp_path, "eab", "list", default_env_file=unit_file)
    assert listed.returncode == 0 and "team-a" in listed.stdout and listed.stderr == ""  # reading says nothing
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "data").exists()

    # a named file wins over the default
    other = env_file(tmp_path / "other.env", {**REQUIRED, "DATA_DIR": str(tmp_path / "missing")})
    proc = jackdaw(tmp_path, "accounts", "--env-file", str(other), default_env_file=unit_file)
    assert proc.returncode == 1 and str(tmp_path / "missing") in one_line(proc)


@pytest.mark.parametrize("where", ["after", "after=", "between"])
def test_env_file_anywhere_on_the_line(tmp_path: Path, where: str) -> None:
    data = tmp_path / "state"
    data.mkdir()
    path = str(env_file(tmp_path / "jackdaw.env", {**REQUIRED, "DATA_DIR": str(data)}))
    argv = {"after": ["db", "upgrade", "--env-file", path], "after=": ["db", "upgrade", f"--env-file={path}"],
            "between": ["db", "--env-file", path, "upgrade"]}[where]
    proc = jackdaw(tmp_path, *argv)
    assert proc.returncode == 0, proc.stderr
    assert (data / "jackdaw.db").is_file()
    proc = jackdaw(tmp_path, "order", "show", "--env-file", path, "-hx4Mz0bQyW3Kd9vT1aLpN")  # an id that looks
    assert proc.returncode == 1 and "-hx4Mz0bQyW3Kd9vT1aLpN" in one_line(proc)             # like an option


@pytest.mark.parametrize("argv", [["orders"], ["eab", "list", "--json"], ["--help"], ["--version"]], ids=" ".join)
def test_a_closed_pipe_ends_quietly(tmp_path: Path, argv: list[str]) -> None:
    """`jackdaw orders | head -1`: the reader went away; no BrokenPipeError traceback, and the
    status a shell reports for coreutils in the same place (141) or 0."""
    data = tmp_path / "state"
    data.mkdir()
    env = {**REQUIRED, "DATA_DIR": str(data)}
    assert jackdaw(tmp_path, "db", "upgrade", env=env).returncode == 0
    read, write = os.pipe()
    os.close(read)  # closed before the CLI writes: every write meets EPIPE
    try:
        proc = subprocess.run([sys.executable, "-m", "jackdaw.cli", *argv], cwd=tmp_path, stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    finally:
        os.close(write)
    assert proc.returncode in (0, 141) and proc.stderr == "", proc.stderr


def test_commands_before_gunicorn_need_no_metrics_directory(tmp_path: Path) -> None:
    """The unit's ExecStartPre runs with PROMETHEUS_MULTIPROC_DIR set before gunicorn made it
    (was: FileNotFoundError from prometheus-client at import); the CLI writes nothing there."""
    data = tmp_path / "state"
    data.mkdir()
    metrics = tmp_path / "run" / "prometheus"
    env = {**REQUIRED, "ALLOWED_DOMAINS": "example.test", "DATA_DIR": str(data),
           "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    for argv in (["check"], ["db", "upgrade"], ["relay-cert", "placeholder"]):
        proc = jackdaw(tmp_path, *argv, env=env)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "run").exists()


def test_check_refuses_mistyped_settings(tmp_path: Path) -> None:
    """The issue's typos gave `settings OK` and a relay that issues any name to anyone."""
    path = env_file(tmp_path / "jackdaw.env", {**REQUIRED, "DATA_DIR": str(tmp_path), "ALLOWED_DOMIANS": "example.test",
                                               "EAB_REQUIERD": "true", "TZ": "UTC"})
    proc = jackdaw(tmp_path, "check", "--env-file", str(path), env={"RELAY_CERT_ENABLD": "false", "LANG": "C"})
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout
    assert proc.stderr.splitlines() == [
        f"configuration error: ALLOWED_DOMIANS: not a Jackdaw setting (in {path}); did you mean ALLOWED_DOMAINS?",
        f"configuration error: EAB_REQUIERD: not a Jackdaw setting (in {path}); did you mean EAB_REQUIRED?",
        "configuration error: RELAY_CERT_ENABLD: not a Jackdaw setting (in the environment); "
        "did you mean RELAY_CERT_ENABLED?",
    ]
    # a mistyped required name: both the name and what is missing
    typo = {**REQUIRED, "DATA_DIR": str(tmp_path), "RELAY_DOMIAN": REQUIRED["RELAY_DOMAIN"]}
    del typo["RELAY_DOMAIN"]
    proc = jackdaw(tmp_path, "check", "--env-file", str(env_file(tmp_path / "typo.env", typo)))
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 2, proc.stderr
    assert "did you mean RELAY_DOMAIN?" in proc.stderr and "RELAY_DOMAIN: required but not set" in proc.stderr


GUNICORN_SETTINGS = [
    ("JACKDAW_WORKERS", "two", "expected a whole number"),
    ("JACKDAW_WORKERS", "0", "must be at least 1"),
    ("JACKDAW_THREADS", "-1", "must be at least 1"),
    ("JACKDAW_BIND", "localhost", "expected host:port"),
    ("JACKDAW_BIND", "127.0.0.1:99999", "expected host:port"),
    ("JACKDAW_BIND", "unix:", "unix: needs a socket path"),
    ("JACKDAW_BIND", "unix:/run/jackdaw/jackdaw.sock", None),
    ("JACKDAW_BIND", "[::1]:8000", None),
    ("JACKDAW_WORKERS", "2", None),
]


@pytest.mark.parametrize(("key", "value", "says"), GUNICORN_SETTINGS, ids=[f"{k}={v}" for k, v, _ in GUNICORN_SETTINGS])
def test_check_validates_gunicorns_settings(tmp_path: Path, key: str, value: str, says: str | None) -> None:
    env = {**REQUIRED, "ALLOWED_DOMAINS": "example.test", "DATA_DIR": str(tmp_path), key: value}
    proc = jackdaw(tmp_path, "check", env=env)
    if says is None:
        assert proc.returncode == 0 and proc.stdout.startswith("settings OK"), proc.stderr
    else:
        line = one_line(proc)
        assert proc.returncode == 2 and line.startswith(f"configuration error: {key}: {says}"), line
