"""Reading typed values from environment-style settings; every error names the variable.

Shared by jackdaw.settings and the DNS providers, each of which reads its own prefixed keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


def required(env: Mapping[str, str], key: str, context: str = "") -> str:
    value = env.get(key, "").strip()
    if not value:
        raise ConfigError(f"{key}: required{f' for {context}' if context else ''} but not set")
    return value


def integer(env: Mapping[str, str], key: str, default: int, *, minimum: int | None = None,
            maximum: int | None = None) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key}: expected a whole number, got {raw!r}") from None
    _check_range(key, value, minimum, maximum)
    return value


def number(env: Mapping[str, str], key: str, default: float, *, minimum: float | None = None,
           maximum: float | None = None, positive: bool = False) -> float:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key}: expected a{' positive' if positive else ''} number, got {raw!r}") from None
    if positive and not value > 0:
        raise ConfigError(f"{key}: must be a positive number, got {raw!r}")
    _check_range(key, value, minimum, maximum)
    return value


def boolean(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key}: expected true or false, got {raw!r}")


def _check_range(key: str, value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key}: must be at least {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key}: must be at most {maximum:g}, got {value:g}")


class RecordingEnv(Mapping[str, str]):
    """An env mapping that remembers which keys were looked up (``get`` goes through here too):
    what a reader reads is learnt from the reader itself, not from a list kept beside it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.read: list[str] = []

    def __getitem__(self, key: str) -> str:
        if key not in self.read:
            self.read.append(key)
        return self._env[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._env)

    def __len__(self) -> int:
        return len(self._env)
