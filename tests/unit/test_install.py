"""`make install`: the production venv the systemd unit runs, lean and from Debian's python3.

Checked by make's dry run (what would be executed) against deploy/jackdaw.service and the
requirements files; the real build (141 MB, ~35 s from PyPI) is done by hand, see README.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = ("pytest", "mypy", "ruff", "certbot", "moto", "responses", "trustme", "hypothesis", "hadolint")


def dry_run(*args: str, target: str = "install") -> list[str]:
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed")
    proc = subprocess.run([make, "-n", "-C", str(ROOT), target, *args], capture_output=True, text=True,
                          timeout=30, check=True)
    return proc.stdout.splitlines()


def test_install_builds_the_units_venv_from_debians_python_with_runtime_requirements_only() -> None:
    unit = (ROOT / "deploy" / "jackdaw.service").read_text()
    workdir = re.search(r"^WorkingDirectory=(.+)$", unit, re.M).group(1)  # type: ignore[union-attr]
    venvs = set(re.findall(rf"^Exec\w*={re.escape(workdir)}/(\S+)/bin/", unit, re.M))
    assert venvs == {".venv"}, venvs
    lines = dry_run(f"INSTALL_VENV={workdir}/.venv")  # the unit's path; a dry run touches nothing
    recipe = "\n".join(lines)
    assert f"/usr/bin/python3 -m venv {workdir}/.venv" in recipe  # not the first python3 on PATH
    assert f"{workdir}/.venv/bin/python -m pip install --disable-pip-version-check -q --no-cache-dir " \
           "-r requirements.txt" in recipe
    assert "requirements-dev" not in recipe and "apt-get install -y" not in recipe  # no test bed on a server
    assert f"chmod -R a+rX {workdir}/.venv" in recipe
    default = dry_run()
    assert any(line.startswith(f"/usr/bin/python3 -m venv {ROOT}/.venv") for line in default)


def test_runtime_requirements_hold_no_test_tools() -> None:
    runtime = [line.split("==")[0].split("[")[0].strip().lower()
               for line in (ROOT / "requirements.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert runtime and not [name for name in runtime if name.startswith(DEV_ONLY)]
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "-r requirements.txt" in dev and all(tool in dev for tool in ("pytest", "mypy", "certbot"))


def test_docs_say_make_install() -> None:
    readme = (ROOT / "README.md").read_text()
    unit = (ROOT / "deploy" / "jackdaw.service").read_text()
    for text in (readme, unit):
        assert "make -C /opt/jackdaw install" in text
        assert "make -C /opt/jackdaw deps" not in text


def test_run_uses_the_runtime_venv_never_the_test_bed(tmp_path: Path) -> None:
    """`make run` ("run the relay against a real CA") installed Chromium, Prometheus, Caddy and
    Pebble through `make deps`: now it serves from `make install`'s venv, made if missing."""
    venv = tmp_path / "venv"  # absent: the dry run shows `make install` building it
    recipe = "\n".join(dry_run(f"INSTALL_VENV={venv}", target="run"))
    assert f"/usr/bin/python3 -m venv {venv}" in recipe and "-r requirements.txt" in recipe
    assert f"{venv}/bin/jackdaw db upgrade" in recipe
    assert f"{venv}/bin/gunicorn -c gunicorn.conf.py wsgi:app" in recipe
    for test_bed in ("apt-get update", "apt-get install -y", "requirements-dev", "pebble", "chromium"):
        assert test_bed not in recipe, test_bed
