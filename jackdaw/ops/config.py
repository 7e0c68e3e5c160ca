"""The effective configuration for `jackdaw check --show`, secrets masked, with where each
secret came from (env, a NAME_FILE, a systemd credential: jackdaw.credentials).

Every ``Settings`` field is listed, then every environment key the configured DNS provider
reads (found by watching which keys its ``from_env`` looks up, so third-party providers are
covered too) plus any other set key carrying the provider's prefix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from jackdaw.credentials import PATH_SECRETS, is_secret
from jackdaw.dns.registry import build_provider
from jackdaw.settings import Settings

MASK = "****"
#: secrets at least this long show their first two characters (enough to tell two apart)
PREFIX_MIN_LENGTH = 12


def mask_secret(value: str) -> str:
    return value[:2] + "…" if len(value) >= PREFIX_MIN_LENGTH else MASK


def mask_url(value: str) -> str:
    """A URL with its password (and secret-looking query parameters) replaced by ****."""
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return MASK  # unparseable: it may hold anything
    netloc, query = parts.netloc, parts.query
    if password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{hostport}"
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(is_secret(k) for k, _ in pairs):
        query = urlencode([(k, MASK if is_secret(k) else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return value
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def mask_path(value: str) -> str:
    """A URL reduced to scheme and host: a webhook's path is often its secret (Slack, Teams)."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return MASK
    return f"{parts.scheme}://{parts.hostname}/{MASK}" if parts.scheme and parts.hostname else MASK


def mask(key: str, value: str) -> str:
    """What `check --show` may print for ``key=value``."""
    if not value or key.upper() in PATH_SECRETS:  # the path of a secret file, not a secret
        return value
    if is_secret(key):
        return mask_secret(value)
    if key.upper().endswith("WEBHOOK_URL"):
        return mask_path(value)
    return mask_url(value)


@dataclass(frozen=True)
class ConfigEntry:
    key: str
    #: None when unset
    value: str | None
    masked: bool
    #: where a secret came from ("env", "file PATH", "credential PATH"); None for other settings
    source: str | None = None


@dataclass(frozen=True)
class EffectiveConfig:
    settings: list[ConfigEntry]
    dns_provider: str
    provider_env: list[ConfigEntry]


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ", ".join("=".join(map(str, item)) if isinstance(item, tuple) else str(item) for item in value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bytes):  # the key passphrase: masked below like any secret
        return value.decode("utf-8", "replace")
    return str(value)


def _entry(key: str, value: str | None, source: str | None = None) -> ConfigEntry:
    if value is None:
        return ConfigEntry(key, None, False)
    shown = mask(key, value)
    return ConfigEntry(key, shown, shown != value, source)


class _Recorder(Mapping[str, str]):
    """An env mapping that remembers which keys were looked up."""

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


def provider_keys(settings: Settings) -> list[str]:
    """Env keys the configured DNS provider uses: those it reads, and any set with its prefix."""
    recorder = _Recorder(settings.env)
    build_provider(settings.dns_provider, recorder)
    prefix = settings.dns_provider.upper().replace("-", "_") + "_"
    keys = set(recorder.read) | {k for k in settings.env if k.startswith(prefix)}
    return sorted(keys)


def effective_config(settings: Settings) -> EffectiveConfig:
    sources = settings.secret_sources  # a secret's field is its setting's name in lower case
    fields = [
        _entry(f.name, _text(getattr(settings, f.name)), sources.get(f.name.upper()))
        for f in dataclasses.fields(settings)
        if f.name not in ("env", "secret_sources")
    ]
    env = settings.env
    provider = [_entry(k, env[k] if k in env else None, sources.get(k)) for k in provider_keys(settings)]
    return EffectiveConfig(fields, settings.dns_provider, provider)
