"""Where the settings come from: the process environment, the unit's environment file
(JACKDAW_ENV_FILE, or the CLI's --env-file) or a checkout's ``./.env``, and the database URL,
which the CLI needs before (and without) the rest of the settings."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
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
#: the unit's EnvironmentFile=: the CLI reads it when no file is named (jackdaw.cli)
DEFAULT_ENV_FILE = "/etc/jackdaw/jackdaw.env"


def _read_env_file(path: str, key: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as handle:  # dotenv_values says nothing of a missing file
            handle.read(1)
    except OSError as e:
        raise ConfigError(f"{key}: cannot read {path!r}: {e.strerror}") from None
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


@dataclass(frozen=True)
class Loaded:
    """The settings as read: the merged environment, and the settings file with its own values."""

    env: dict[str, str]
    #: (path, values) of JACKDAW_ENV_FILE, else of ./.env when it was read; None: environment only
    file: tuple[str, dict[str, str]] | None

    def describe(self) -> str:
        if self.file is None:
            return "settings from the environment (no settings file)"
        return f"settings from {self.file[0]}" + ("" if os.environ.get(ENV_FILE, "").strip() else
                                                  " and the environment")


_pinned: Loaded | None = None


def load(dotenv: str | None = ".env") -> Loaded:
    """The process environment with an environment file.

    JACKDAW_ENV_FILE (the unit's EnvironmentFile, or the CLI's --env-file) wins over the
    process environment, as systemd's EnvironmentFile= wins over Environment=, and no `.env`
    is read then: the CLI sees exactly what the unit sees. Without it, `./.env` fills in only
    what the environment leaves unset.
    """
    if _pinned is not None:
        return _pinned
    env_file = os.environ.get(ENV_FILE, "").strip()
    if env_file:
        values = _read_env_file(env_file, ENV_FILE)
        return Loaded({**os.environ, **values}, (env_file, values))
    merged: dict[str, str] = {}
    file = None
    if dotenv and Path(dotenv).is_file():
        values = {k: v for k, v in dotenv_values(dotenv).items() if v is not None}
        merged.update(values)
        file = (dotenv, values)
    merged.update(os.environ)
    return Loaded(merged, file)


def merged_env(dotenv: str | None) -> dict[str, str]:
    return dict(load(dotenv).env)


@contextmanager
def pinned() -> Iterator[Loaded]:
    """Read the settings once, for the CLI command run inside: it may switch to the data
    directory's owner (jackdaw.ops.runas), who cannot read root's settings file or working
    directory. In-process callers (tests) get a fresh read after it."""
    global _pinned
    _pinned = None
    _pinned = load()
    try:
        yield _pinned
    finally:
        _pinned = None


def location_named(env: Mapping[str, str]) -> bool:
    """DATA_DIR or DATABASE_URL is set: the database's place was chosen, not guessed."""
    return bool(env.get("DATA_DIR", "").strip() or env.get("DATABASE_URL", "").strip())


def require_location(loaded: Loaded) -> None:
    """The CLI never falls back on ./data: a database there is one the relay never sees."""
    if location_named(loaded.env):
        return
    if loaded.file is not None:
        raise ConfigError(f"DATA_DIR: set neither in {loaded.file[0]} nor in the environment (nor DATABASE_URL): "
                          "name the relay's database there")
    raise ConfigError(f"DATA_DIR: not set (nor DATABASE_URL), and no settings file: {DEFAULT_ENV_FILE} does "
                      "not exist and no --env-file / JACKDAW_ENV_FILE names one; the CLI does not guess ./data")


def database_url_from_env(dotenv: str | None = ".env") -> str:
    """DATABASE_URL alone, for migrations run before the rest is configured."""
    env = merged_env(dotenv)
    return database_url(env, Path(env.get("DATA_DIR", "").strip() or "data"))
