"""gunicorn's own log lines follow the LOG_FORMAT the app will read (jackdaw.serverlog)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jackdaw import serverlog


def test_the_log_format_comes_from_the_units_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under systemd the settings are in JACKDAW_ENV_FILE, not in gunicorn's environment."""
    env_file = tmp_path / "jackdaw.env"
    env_file.write_text("LOG_FORMAT=json\n")
    monkeypatch.chdir(tmp_path)  # no ./.env here
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    monkeypatch.setenv("JACKDAW_ENV_FILE", str(env_file))
    assert serverlog.log_format(serverlog.environment()) == "json"


def test_an_unreadable_env_file_leaves_the_logs_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    monkeypatch.setenv("JACKDAW_ENV_FILE", str(tmp_path / "missing.env"))  # the start-up check reports it
    assert serverlog.log_format(serverlog.environment()) == "text"
