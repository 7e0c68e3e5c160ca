"""Where the settings come from: the process environment, the unit's environment file
(JACKDAW_ENV_FILE, or the CLI's --env-file) or a checkout's ``./.env``, and the database URL,
which the CLI needs before (and without) the rest of the settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from jackdaw.envparse import ConfigError


def check_database_url(url: str) -> str:
    """Only the drivers Jackdaw ships (another would fail later with ModuleNotFoundError)."""
    if not url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        raise ConfigError("DATABASE_URL: only sqlite:/// and postgresql+psycopg:// URLs are supported, got "
                          f"{url.partition(':')[0]}:...")
    return url


def database_url(env: Mapping[str, str], data_dir: Path) -> str:
    return check_database_url(env.get("DATABASE_URL", "").strip() or f"sqlite:///{data_dir.resolve()}/jackdaw.db")


#: the environment file the systemd unit reads (EnvironmentFile=); the CLI's --env-file sets it
ENV_FILE = "JACKDAW_ENV_FILE"


def _read_env_file(path: str, key: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as handle:  # dotenv_values says nothing of a missing file
            handle.read(1)
    except OSError as e:
        raise ConfigError(f"{key}: cannot read {path!r}: {e.strerror}") from None
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def merged_env(dotenv: str | None) -> dict[str, str]:
    """The process environment with an environment file.

    JACKDAW_ENV_FILE (the unit's EnvironmentFile, or the CLI's --env-file) wins over the
    process environment, as systemd's EnvironmentFile= wins over Environment=, and no `.env`
    is read then: the CLI sees exactly what the unit sees. Without it, `./.env` fills in only
    what the environment leaves unset.
    """
    env_file = os.environ.get(ENV_FILE, "").strip()
    if env_file:
        return {**os.environ, **_read_env_file(env_file, ENV_FILE)}
    merged: dict[str, str] = {}
    if dotenv and Path(dotenv).is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    merged.update(os.environ)
    return merged


def data_dir_is_default(dotenv: str | None = ".env") -> bool:
    """DATA_DIR and DATABASE_URL both unset: the database lives in ./data, which is ours to make."""
    env = merged_env(dotenv)
    return not env.get("DATA_DIR", "").strip() and not env.get("DATABASE_URL", "").strip()


def database_url_from_env(dotenv: str | None = ".env") -> str:
    """DATABASE_URL alone, for migrations run before the rest is configured."""
    env = merged_env(dotenv)
    return database_url(env, Path(env.get("DATA_DIR", "").strip() or "data"))
