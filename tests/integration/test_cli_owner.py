"""Root runs `jackdaw` against a DATA_DIR another user owns: it acts as that user.

The real entry point as root, a real system user (`nobody`) owning the data directory under a
scratch directory in /tmp that user can reach; the settings file stays root's (0600), read
before the switch. The files `db upgrade` and `relay-cert placeholder` leave belong to the
directory's owner, and `check` judges writability as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.relay import ROOT

OWNER = "nobody"
REQUIRED = {
    "RELAY_DOMAIN": "relay.example.test",
    "ACME_EMAIL": "ops@example.test",
    "DNS_PROVIDER": "none",
    "UPSTREAM_CHALLENGE": "dns-persist-01",
    "ALLOWED_DOMAINS": "example.test",
}


def _as(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def _python_for(user: pwd.struct_passwd) -> tuple[list[str], str]:
    """An interpreter ``user`` can run with this venv's packages, and its PYTHONPATH: this one,
    or Debian's python3 of the same version when this one lives where the user cannot read
    (root's pyenv): the command switches user before it imports most of its modules."""
    packages = sysconfig.get_paths()["purelib"]
    path = f"{ROOT}{os.pathsep}{packages}"
    for python in (sys.executable, f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"):
        try:
            probe = subprocess.run([python, "-c", "import difflib, smtplib, configparser, sqlalchemy, cryptography"],
                                   env={"PYTHONPATH": path}, capture_output=True, timeout=60,
                                   preexec_fn=lambda: _as(user.pw_uid, user.pw_gid))
        except OSError:  # not even executable by the user
            continue
        if probe.returncode == 0:
            return [python], path
    pytest.fail(f"no python {OWNER} can run with {packages}: install python3 (Debian) of this version")


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory `nobody` can reach (pytest's tmp_path is root's alone)."""
    if os.geteuid() != 0:
        pytest.fail("this test runs as root, as `make test` does")
    path = Path(tempfile.mkdtemp(prefix="jackdaw-owner-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _owned_by(user: pwd.struct_passwd, path: Path) -> Path:
    path.mkdir(mode=0o700)
    os.chown(path, user.pw_uid, user.pw_gid)
    return path


def _run(scratch: Path, user: pwd.struct_passwd, env_file: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    python, path = _python_for(user)
    env = {k: v for k, v in os.environ.items() if k not in ("DATA_DIR", "DATABASE_URL", "JACKDAW_ENV_FILE")}
    return subprocess.run([*python, "-m", "jackdaw.cli", "--env-file", str(env_file), *argv], cwd=scratch,
                          env={**env, "PYTHONPATH": path}, capture_output=True, text=True, timeout=120)


def _settings(scratch: Path, values: dict[str, str]) -> Path:
    path = scratch / "jackdaw.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in {**REQUIRED, **values}.items()))
    path.chmod(0o600)  # root's alone, as /etc/jackdaw/jackdaw.env may be
    return path


def test_root_leaves_files_the_owner_can_open(scratch: Path) -> None:
    user = pwd.getpwnam(OWNER)
    data = _owned_by(user, scratch / "state")
    env_file = _settings(scratch, {"DATA_DIR": str(data)})

    for argv in (["db", "upgrade"], ["relay-cert", "placeholder"]):
        proc = _run(scratch, user, env_file, *argv)
        assert proc.returncode == 0, proc.stderr
        assert f"as user {OWNER}" in proc.stderr.splitlines()[0], proc.stderr
    made = [data, *data.rglob("*")]
    assert {"jackdaw.db", "tls", "fullchain.pem", "privkey.pem"} <= {p.name for p in made}
    wrong = [f"{p} {p.stat().st_uid}" for p in made if (p.stat().st_uid, p.stat().st_gid) != (user.pw_uid, user.pw_gid)]
    assert wrong == []
    # and the owner reads it back: the relay's user opens what root's command made
    proc = _run(scratch, user, env_file, "db", "current")
    assert proc.returncode == 0 and "at head" in proc.stdout, proc.stderr


def test_check_judges_writability_as_the_owner(scratch: Path) -> None:
    user = pwd.getpwnam(OWNER)
    data = _owned_by(user, scratch / "state")
    roots = scratch / "roots"
    roots.mkdir(mode=0o755)  # root's: writable by root, not by the relay's user
    for key, value in (("RELAY_CERT_DIR", roots / "tls"), ("PROMETHEUS_MULTIPROC_DIR", roots / "prometheus")):
        proc = _run(scratch, user, _settings(scratch, {"DATA_DIR": str(data), key: str(value)}), "check")
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0].startswith(f"configuration error: {key}: {roots} is not writable by user {OWNER}"), lines[0]
    proc = _run(scratch, user, _settings(scratch, {"DATA_DIR": str(data),
                                                   "PROMETHEUS_MULTIPROC_DIR": str(data / "prometheus")}), "check")
    assert proc.returncode == 0 and proc.stdout.startswith("settings OK"), proc.stderr


def test_a_python_the_owner_cannot_read_is_refused_in_one_line(scratch: Path) -> None:
    """This very interpreter, as root: where the owner cannot read it (a venv of root's own
    pyenv, as on the test machines) the switch is refused before it happens, in one line, and
    nothing is created; where it can, the command works as the owner. Never a traceback from
    an import after the switch."""
    user = pwd.getpwnam(OWNER)
    data = _owned_by(user, scratch / "state")
    env_file = _settings(scratch, {"DATA_DIR": str(data)})
    env = {k: v for k, v in os.environ.items() if k not in ("DATA_DIR", "DATABASE_URL", "JACKDAW_ENV_FILE")}
    proc = subprocess.run([sys.executable, "-m", "jackdaw.cli", "--env-file", str(env_file), "db", "upgrade"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    if proc.returncode == 0:
        assert (data / "jackdaw.db").stat().st_uid == user.pw_uid
    else:
        assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert f"belongs to {OWNER}, who cannot read this Python's files" in proc.stderr
        assert list(data.iterdir()) == []
