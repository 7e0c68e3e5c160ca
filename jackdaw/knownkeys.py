"""Which names are Jackdaw's settings, and which set names look like a mistyped one.

The names come from the code that reads them, so they cannot drift from it: the keys
``Settings.parse`` looks up (recorded on a minimal configuration), gunicorn's
(``jackdaw.serving.KEYS``), the settings file's own (``JACKDAW_ENV_FILE``), every DNS
provider's ``env_keys``, and the ``<KEY>_FILE`` form of each (a secret read from a file).

An unknown name is reported when it looks like Jackdaw's: in the settings file, when its first
word is one of Jackdaw's prefixes or it is close to a known name; in the process environment
(which holds everybody's variables), only when its first word is a prefix no other software here
shares. `jackdaw check` refuses them; gunicorn's start warns (jackdaw.startup).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: first words other software reads from the same environment (boto3's AWS_*, prometheus_client's
#: PROMETHEUS_*) or too common to be Jackdaw's alone: never flagged by prefix in the environment
SHARED_PREFIXES = frozenset({"AWS", "PROMETHEUS", "DATA", "DATABASE", "LOG", "JOB", "STATUS", "RESPONSE"})
#: first words of names libraries Jackdaw runs read themselves: never flagged anywhere
LIBRARY_PREFIXES = frozenset({"AWS", "PROMETHEUS"})
#: other software's names with one of Jackdaw's prefixes: systemd's sd_notify socket (Type=notify)
FOREIGN_NAMES = frozenset({"NOTIFY_SOCKET"})
#: how close a name must be to a known one to be offered as "did you mean"
CUTOFF = 0.8
_MINIMAL = {"RELAY_DOMAIN": "relay.example.com", "ACME_EMAIL": "ops@example.com", "DNS_PROVIDER": "rfc2136"}


def _settings_keys() -> set[str]:
    from jackdaw import credentials
    from jackdaw.envparse import RecordingEnv
    from jackdaw.settings import Settings

    # the secrets' NAME_FILE and credentials are read by jackdaw.credentials before the rest
    resolved, sources = credentials.resolve(_MINIMAL)
    recorder = RecordingEnv(resolved)
    Settings.parse_resolved(recorder, sources)
    return set(recorder.read) | set(credentials.SECRETS) | {credentials.CREDENTIALS_DIRECTORY}


@functools.cache
def _provider_keys() -> dict[str, tuple[str, ...]]:
    """DNS_PROVIDER name -> the keys it declares (a plugin that fails to load: none)."""
    from jackdaw.dns.registry import known_providers, provider_class

    keys: dict[str, tuple[str, ...]] = {}
    for name in known_providers():
        try:
            keys[name] = provider_class(name).env_keys
        except Exception:  # a broken plugin is reported where DNS_PROVIDER names it
            keys[name] = ()
    return keys


@functools.cache
def known_names() -> frozenset[str]:
    from jackdaw.envfile import ENV_FILE
    from jackdaw.serving import KEYS

    names = _settings_keys() | {k for keys in _provider_keys().values() for k in keys} | set(KEYS) | {ENV_FILE}
    return frozenset(names | {f"{name}_FILE" for name in names if not name.endswith("_FILE")})


@functools.cache
def prefixes() -> frozenset[str]:
    return frozenset(_first_word(name) for name in known_names())


def _first_word(name: str) -> str:
    return name.partition("_")[0]


@dataclass(frozen=True)
class Unknown:
    key: str
    #: where it is set: the settings file's path, or "the environment"
    where: str
    suggestion: str | None

    def line(self) -> str:
        hint = f"; did you mean {self.suggestion}?" if self.suggestion else " (README: Configuration)"
        return f"{self.key}: not a Jackdaw setting (in {self.where}){hint}"


def _suggest(key: str) -> str | None:
    matches = difflib.get_close_matches(key, known_names(), n=1, cutoff=CUTOFF)
    return matches[0] if matches else None


def _undeclared_prefixes() -> tuple[str, ...]:
    """Prefixes of the DNS providers that declare no keys (a plugin's keys cannot be judged)."""
    return tuple(name.upper().replace("-", "_") + "_" for name, keys in _provider_keys().items()
                 if not keys and name != "none")


def unknown(sources: Iterable[tuple[str, Mapping[str, str]]], environment: Mapping[str, str]) -> list[Unknown]:
    """Names in the settings ``sources`` ((path, values)) and in ``environment`` that look like
    Jackdaw's but are none of its settings; each name once, the settings file first."""
    known, ours = known_names(), prefixes()
    plugins = _undeclared_prefixes()
    found: dict[str, Unknown] = {}

    def consider(key: str, where: str, in_file: bool) -> None:
        word = _first_word(key)
        if key in known or key in FOREIGN_NAMES or key in found or word in LIBRARY_PREFIXES or key.startswith(plugins):
            return
        suggestion = _suggest(key)
        looks_ours = (word in ours or suggestion is not None) if in_file else (
            word in ours and word not in SHARED_PREFIXES)
        if looks_ours:
            found[key] = Unknown(key, where, suggestion)

    for path, values in sources:
        for key in values:
            consider(key, path, in_file=True)
    for key in environment:
        consider(key, "the environment", in_file=False)
    return list(found.values())
