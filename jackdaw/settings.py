"""Typed settings read from the environment (and `.env`), validated once at start-up.

Names and defaults follow the original Jackdaw README so an existing `.env` keeps working.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

from jackdaw.dns.base import ConfigError

LE_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _int(env: Mapping[str, str], key: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key}: expected a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{key}: must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key}: must be at most {maximum}, got {value}")
    return value


def _float(env: Mapping[str, str], key: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{key}: expected a number of seconds, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{key}: must be at least {minimum}, got {value}")
    return value


def _required(env: Mapping[str, str], key: str) -> str:
    value = env.get(key, "").strip()
    if not value:
        raise ConfigError(f"{key}: required but not set")
    return value


def _domains(raw: str) -> tuple[str, ...]:
    return tuple(d.strip().lower().rstrip(".") for d in raw.split(",") if d.strip())


def _database_url(env: Mapping[str, str], data_dir: Path) -> str:
    return env.get("DATABASE_URL", "").strip() or f"sqlite:///{data_dir.resolve()}/jackdaw.db"


def _merged_env(dotenv: str | None) -> dict[str, str]:
    merged: dict[str, str] = {}
    if dotenv and Path(dotenv).is_file():
        merged.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    merged.update(os.environ)
    return merged


def database_url_from_env(dotenv: str | None = ".env") -> str:
    """DATABASE_URL alone, for migrations run before the rest is configured."""
    env = _merged_env(dotenv)
    return _database_url(env, Path(env.get("DATA_DIR", "").strip() or "data"))


@dataclass(frozen=True)
class Settings:
    relay_domain: str
    acme_email: str
    dns_provider: str
    le_directory: str = LE_PRODUCTION
    dns_propagation_wait: float = 0.0
    allowed_domains: tuple[str, ...] = ()
    log_level: str = "INFO"
    challenge_http_port: int = 80
    challenge_timeout: float = 5.0
    challenge_retries: int = 3
    challenge_retry_delay: float = 2.0
    data_dir: Path = Path("data")
    database_url: str = ""
    #: CA bundle (PEM) trusted for the upstream CA, e.g. Pebble's test CA; never "no verification"
    upstream_ca_bundle: str | None = None
    #: "host[:port]" used for HTTP-01 name resolution and DNS lookups; None = system resolver
    dns_resolver: str | None = None
    #: port of the zone's authoritative servers for propagation checks
    dns_authoritative_port: int = 53
    dns_propagation_timeout: float = 120.0
    dns_propagation_interval: float = 0.5
    job_threads: int = 4
    #: seconds a job stays claimed without a heartbeat before another worker takes it over
    job_lease: float = 30.0
    #: every remaining setting, for DNS providers (PORKBUN_API_KEY, RFC2136_NAMESERVER, ...)
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def upstream_key_path(self) -> Path:
        return self.data_dir / "upstream-account.key"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, dotenv: str | None = ".env") -> Settings:
        """Read settings; `.env` values fill in what the process environment leaves unset."""
        return cls.parse(_merged_env(dotenv) if env is None else env)

    @classmethod
    def parse(cls, env: Mapping[str, str]) -> Settings:
        log_level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if log_level not in LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL: expected one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
        data_dir = Path(env.get("DATA_DIR", "").strip() or "data")
        database_url = _database_url(env, data_dir)
        if not database_url.startswith(("sqlite", "postgresql")):
            raise ConfigError("DATABASE_URL: only sqlite:/// and postgresql+psycopg:// URLs are supported")
        ca_bundle = env.get("UPSTREAM_CA_BUNDLE", "").strip() or None
        if ca_bundle and not Path(ca_bundle).is_file():
            raise ConfigError(f"UPSTREAM_CA_BUNDLE: no such file {ca_bundle!r}")
        le_directory = env.get("LE_DIRECTORY", "").strip() or LE_PRODUCTION
        if not le_directory.startswith(("https://", "http://")):
            raise ConfigError(f"LE_DIRECTORY: expected an https:// URL, got {le_directory!r}")
        return cls(
            relay_domain=_required(env, "RELAY_DOMAIN").lower().rstrip("."),
            acme_email=_required(env, "ACME_EMAIL"),
            dns_provider=_required(env, "DNS_PROVIDER").lower(),
            le_directory=le_directory,
            dns_propagation_wait=_float(env, "DNS_PROPAGATION_WAIT", 0.0),
            allowed_domains=_domains(env.get("ALLOWED_DOMAINS", "")),
            log_level=log_level,
            challenge_http_port=_int(env, "CHALLENGE_HTTP_PORT", 80, minimum=1, maximum=65535),
            challenge_timeout=_float(env, "CHALLENGE_TIMEOUT", 5.0, minimum=0.1),
            challenge_retries=_int(env, "CHALLENGE_RETRIES", 3, minimum=1),
            challenge_retry_delay=_float(env, "CHALLENGE_RETRY_DELAY", 2.0),
            data_dir=data_dir,
            database_url=database_url,
            upstream_ca_bundle=ca_bundle,
            dns_resolver=env.get("DNS_RESOLVER", "").strip() or None,
            dns_authoritative_port=_int(env, "DNS_AUTHORITATIVE_PORT", 53, minimum=1, maximum=65535),
            dns_propagation_timeout=_float(env, "DNS_PROPAGATION_TIMEOUT", 120.0, minimum=1.0),
            dns_propagation_interval=_float(env, "DNS_PROPAGATION_INTERVAL", 0.5, minimum=0.05),
            job_threads=_int(env, "JOB_THREADS", 4, minimum=1),
            job_lease=_float(env, "JOB_LEASE_SECONDS", 30.0, minimum=1.0),
            env=dict(env),
        )
