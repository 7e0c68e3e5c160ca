"""Typed settings read from the environment (and `.env`), validated once at start-up.

Names and defaults follow the original Jackdaw README so an existing `.env` keeps working.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jackdaw import credentials, envfile, envparse
from jackdaw.envparse import ConfigError
from jackdaw.ledger import Limit, parse_limit
from jackdaw.logs import parse_log_format

LE_PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))
#: Let's Encrypt's limits (rate-limits page, 2026-08), the budget's defaults
LE_NEW_ORDERS = Limit("new-orders", 300, 3 * 3600)
LE_CERTS_PER_DOMAIN = Limit("certs-per-domain", 50, 7 * 86400)
LE_CERTS_PER_SET = Limit("certs-per-set", 5, 7 * 86400)
LE_FAILED_AUTHZ = Limit("failed-authz", 5, 3600)


def _networks(env: Mapping[str, str], key: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    nets = []
    for item in env.get(key, "").split(","):
        if item.strip():
            try:
                nets.append(ipaddress.ip_network(item.strip()))
            except ValueError as e:
                raise ConfigError(f"{key}: {e}") from None
    return tuple(nets)


def _proxies(env: Mapping[str, str], key: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """gunicorn's forwarded_allow_ips: addresses or CIDRs, ``*`` for any; default loopback."""
    raw = env.get(key, "").strip() or "127.0.0.1,::1"
    if raw == "*":
        return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    return _networks({key: raw}, key)


UPSTREAM_CHALLENGES = ("dns-01", "dns-persist-01", "auto")


def _upstream_challenge(env: Mapping[str, str], dns_provider: str) -> str:
    value = env.get("UPSTREAM_CHALLENGE", "").strip().lower() or "dns-01"
    if value not in UPSTREAM_CHALLENGES:
        raise ConfigError(f"UPSTREAM_CHALLENGE: expected one of {', '.join(UPSTREAM_CHALLENGES)}, got {value!r}")
    if dns_provider == "none" and value != "dns-persist-01":
        raise ConfigError("DNS_PROVIDER: 'none' writes no DNS records, so it needs UPSTREAM_CHALLENGE=dns-persist-01 "
                          "(a _validation-persist record published once: jackdaw dns-persist show NAME)")
    return value


def _max_names(env: Mapping[str, str], key: str) -> tuple[tuple[str, int], ...]:
    raw = env.get(key)
    if raw is None:
        return (("tlsserver", 25),)  # Let's Encrypt's tlsserver profile (2026-08)
    pairs = []
    for item in raw.split(","):
        if not item.strip():
            continue
        name, sep, number = item.partition("=")
        if not sep or not number.strip().isdigit() or int(number) < 1:
            raise ConfigError(f"{key}: expected profile=N, got {item.strip()!r}")
        pairs.append((name.strip(), int(number)))
    return tuple(pairs)


def _command(env: Mapping[str, str], key: str) -> tuple[str, ...]:
    """A command line split like a shell would (no shell runs it); () when unset."""
    try:
        return tuple(shlex.split(env.get(key, "")))
    except ValueError as e:
        raise ConfigError(f"{key}: {e}") from None


def _dns_name(text: str) -> str:
    """``text`` as a lowercase absolute DNS name without the trailing dot; ValueError if bad."""
    name = text.strip().lower().rstrip(".")
    labels = name.split(".")
    if not name or len(name) > 253 or any(not label or len(label) > 63 for label in labels):
        raise ValueError(f"{text.strip()!r} is not a DNS name")
    if any(ch.isspace() or ch in "=,/\\@:;\"'" for ch in name):
        raise ValueError(f"{text.strip()!r} is not a DNS name")
    return name


def _is_at_or_under(name: str, ancestor: str) -> bool:
    return name == ancestor or name.endswith("." + ancestor)


def _zone_overrides(env: Mapping[str, str], key: str) -> tuple[tuple[str, str], ...]:
    """``name=zone,name=zone``: records at or under ``name`` live in ``zone`` (no SOA lookup).

    Longest name first, so the most specific entry wins when entries nest.
    """
    pairs: dict[str, str] = {}
    for item in env.get(key, "").split(","):
        if not item.strip():
            continue
        name_text, sep, zone_text = item.partition("=")
        if not sep:
            raise ConfigError(f"{key}: expected name=zone, got {item.strip()!r}")
        try:
            name, zone = _dns_name(name_text), _dns_name(zone_text)
        except ValueError as e:
            raise ConfigError(f"{key}: {e} (in {item.strip()!r})") from None
        if not _is_at_or_under(name, zone):
            raise ConfigError(f"{key}: zone {zone!r} cannot hold names under {name!r} (in {item.strip()!r})")
        if name in pairs:
            raise ConfigError(f"{key}: {name!r} is listed twice")
        pairs[name] = zone
    return tuple(sorted(pairs.items(), key=lambda pair: (-len(pair[0]), pair[0])))


def _passphrase(env: Mapping[str, str], key: str) -> bytes | None:
    """A secret as bytes (``env`` is already resolved: jackdaw.credentials read any KEY_FILE)."""
    value = env.get(key, "").strip()
    return value.encode() if value else None


def _readable_file(key: str, path: str) -> None:
    """Readable by this user now (the unit's user: a root-only file would fail every call later)."""
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise ConfigError(f"{key}: no such file {path!r}") from None
    except OSError as e:
        raise ConfigError(f"{key}: cannot read {path!r}: {e.strerror}") from None


def _domains(raw: str) -> tuple[str, ...]:
    return tuple(d.strip().lower().rstrip(".") for d in raw.split(",") if d.strip())


_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_EMAIL = re.compile(r"[^@\s:/<>\"]+@([^@\s]+)")


def _url_host(text: str) -> str | None:
    """The host of something written as a URL (``https://x.example.com/``), else None."""
    if "://" not in text and "/" not in text:
        return None
    return urlsplit(text if "://" in text else "//" + text).hostname


def _host_name(env: Mapping[str, str], key: str) -> str:
    """A host name (not a URL, not host:port): the relay's public name."""
    raw = envparse.required(env, key)
    host = _url_host(raw)
    if host is not None:
        raise ConfigError(f"{key}: expected a host name, not a URL: write {key}={host}" if host else
                          f"{key}: expected a host name, got {raw!r}")
    name = raw.lower().rstrip(".")
    if not all(_LABEL.fullmatch(label) for label in name.split(".")) or len(name) > 253:
        hint = f": write {key}={name.partition(':')[0]} (no port)" if ":" in name else ""
        raise ConfigError(f"{key}: {raw!r} is not a host name{hint}")
    return name


def _email(env: Mapping[str, str], key: str) -> str:
    raw = envparse.required(env, key)
    address = raw.removeprefix("mailto:")
    match = _EMAIL.fullmatch(address)
    domain = match.group(1).lower().rstrip(".") if match else ""
    if not domain or "." not in domain or not all(_LABEL.fullmatch(label) for label in domain.split(".")):
        raise ConfigError(f"{key}: expected an e-mail address such as ops@example.com, got {raw!r} "
                          "(the upstream CA refuses the account otherwise)")
    return address


def _base_domains(env: Mapping[str, str], key: str, wildcards: bool = False) -> tuple[str, ...]:
    """ALLOWED_DOMAINS / WILDCARD_DOMAINS: DNS names; ``*.`` only where it means something."""
    domains = _domains(env.get(key, ""))
    for domain in domains:
        base = domain.removeprefix("*.") if wildcards else domain
        if base.startswith("*") or (not wildcards and "*" in base):
            bare = base.lstrip("*.")
            means = (f"wildcards for the names under {bare}; *.{bare} for that wildcard alone" if wildcards
                     else f"it allows {bare} and every name under it")
            raise ConfigError(f"{key}: {domain!r} is a pattern, which matches no name here: list the base "
                              f"domain, {key}={bare} ({means})")
        if _url_host(base) is not None:
            raise ConfigError(f"{key}: {domain!r} is a URL: list domain names, e.g. {key}={_url_host(base)}")
        try:
            _dns_name(base)
        except ValueError as e:
            raise ConfigError(f"{key}: {e}") from None
    return domains


def _resolver(env: Mapping[str, str], key: str) -> str | None:
    from jackdaw.dns.resolver import parse_hostport  # a pure parser; settings imports no layer at load

    raw = env.get(key, "").strip()
    if not raw:
        return None
    if _url_host(raw) is not None:
        raise ConfigError(f"{key}: expected host[:port], not a URL: write {key}={_url_host(raw)}")
    try:
        parse_hostport(raw, 53)
    except ValueError as e:
        raise ConfigError(f"{key}: expected host[:port], {e}") from None
    return raw


#: a guessable token would open the status page to the public side
STATUS_TOKEN_MIN_LENGTH = 16


def _status_token(env: Mapping[str, str]) -> str | None:
    token = env.get("STATUS_TOKEN", "").strip()
    if not token:
        return None
    if len(token) < STATUS_TOKEN_MIN_LENGTH or any(c.isspace() for c in token):
        raise ConfigError(f"STATUS_TOKEN: at least {STATUS_TOKEN_MIN_LENGTH} characters and no spaces "
                          "(e.g. `openssl rand -hex 32`)")
    return token


SMTP_SECURITY = {"starttls": 587, "ssl": 465, "none": 25}


def _notify(env: Mapping[str, str]) -> dict[str, Any]:
    """The NOTIFY_* settings (jackdaw.notify), as Settings fields (after RELAY_DOMAIN and
    ACME_EMAIL were checked: the e-mail defaults use them)."""
    relay_domain = env.get("RELAY_DOMAIN", "").strip().lower().rstrip(".")
    acme_email = env.get("ACME_EMAIL", "").strip()
    url = env.get("NOTIFY_WEBHOOK_URL", "").strip() or None
    secret = _passphrase(env, "NOTIFY_WEBHOOK_SECRET")
    if url is not None and not url.startswith(("https://", "http://")):
        raise ConfigError("NOTIFY_WEBHOOK_URL: expected an https:// (or http://) URL")  # it may hold a token
    if url is not None and secret is None:
        raise ConfigError("NOTIFY_WEBHOOK_SECRET: required with NOTIFY_WEBHOOK_URL (deliveries are signed with it)")
    if url is None and secret is not None:
        raise ConfigError("NOTIFY_WEBHOOK_URL: NOTIFY_WEBHOOK_SECRET is set but no webhook URL")
    security = env.get("NOTIFY_SMTP_SECURITY", "").strip().lower() or "starttls"
    if security not in SMTP_SECURITY:
        raise ConfigError(f"NOTIFY_SMTP_SECURITY: expected one of {', '.join(SMTP_SECURITY)}, got {security!r}")
    user = env.get("NOTIFY_SMTP_USER", "").strip() or None
    password = _passphrase(env, "NOTIFY_SMTP_PASSWORD")
    if password is not None and user is None:
        raise ConfigError("NOTIFY_SMTP_USER: required with NOTIFY_SMTP_PASSWORD")
    if password is not None and security == "none":
        raise ConfigError("NOTIFY_SMTP_PASSWORD: not sent over an unencrypted connection (NOTIFY_SMTP_SECURITY=none)")
    to_key = "NOTIFY_EMAIL_TO" if env.get("NOTIFY_EMAIL_TO", "").strip() else "ACME_EMAIL"
    to = tuple(a.strip() for a in (env.get("NOTIFY_EMAIL_TO", "").strip() or acme_email).split(",") if a.strip())
    sender = env.get("NOTIFY_EMAIL_FROM", "").strip() or f"jackdaw@{relay_domain}"
    for key, address in [("NOTIFY_EMAIL_FROM", sender), *((to_key, a) for a in to)]:
        if "@" not in address or any(ch.isspace() or ch in ",<>" for ch in address):
            raise ConfigError(f"{key}: expected an e-mail address, got {address!r}")
    return {
        "notify_expiry_days": envparse.integer(env, "NOTIFY_EXPIRY_DAYS", 10, minimum=0, maximum=365),
        "notify_order_failures": envparse.integer(env, "NOTIFY_ORDER_FAILURES", 3, minimum=0),
        "notify_budget_percent": envparse.integer(env, "NOTIFY_BUDGET_PERCENT", 10, minimum=0, maximum=100),
        "notify_attempts": envparse.integer(env, "NOTIFY_ATTEMPTS", 8, minimum=1, maximum=50),
        "notify_timeout": envparse.number(env, "NOTIFY_TIMEOUT", 10.0, minimum=0.1),
        "notify_webhook_url": url,
        "notify_webhook_secret": secret,
        "notify_smtp_host": env.get("NOTIFY_SMTP_HOST", "").strip() or None,
        "notify_smtp_port": envparse.integer(env, "NOTIFY_SMTP_PORT", SMTP_SECURITY[security], minimum=1,
                                             maximum=65535),
        "notify_smtp_security": security,
        "notify_smtp_user": user,
        "notify_smtp_password": password.decode() if password is not None else None,
        "notify_email_from": sender,
        "notify_email_to": to,
        "notify_command": _command(env, "NOTIFY_COMMAND"),
        "notify_command_timeout": envparse.number(env, "NOTIFY_COMMAND_TIMEOUT", 30.0, minimum=0.1),
    }


@dataclass(frozen=True)
class Settings:
    relay_domain: str
    acme_email: str
    dns_provider: str
    le_directory: str = LE_PRODUCTION
    dns_propagation_wait: float = 0.0
    allowed_domains: tuple[str, ...] = ()
    #: base domains under which `*.name` may be ordered; wildcards are off while empty
    wildcard_domains: tuple[str, ...] = ()
    log_level: str = "INFO"
    #: LOG_FORMAT: "text" (one line per record) or "json" (one object per line; jackdaw.logs)
    log_format: str = "text"
    challenge_http_port: int = 80
    challenge_timeout: float = 5.0
    challenge_retries: int = 3
    challenge_retry_delay: float = 2.0
    #: let the HTTP-01 check connect to loopback addresses (127.0.0.0/8, ::1); tests and demos
    challenge_allow_loopback: bool = False
    #: CIDRs the HTTP-01 check may connect to although special (link-local, loopback, ...)
    challenge_allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    data_dir: Path = Path("data")
    database_url: str = field(default="", repr=False)  # may carry a password
    #: CA bundle (PEM) trusted for the upstream CA, e.g. Pebble's test CA; never "no verification"
    upstream_ca_bundle: str | None = None
    #: encrypts the upstream account key in the database (jackdaw.upstream.account); None = plain PEM
    upstream_key_passphrase: bytes | None = field(default=None, repr=False)
    #: "host[:port]" used for HTTP-01 name resolution and DNS lookups; None = system resolver
    dns_resolver: str | None = None
    #: port of the zone's authoritative servers for propagation checks
    dns_authoritative_port: int = 53
    dns_propagation_timeout: float = 120.0
    dns_propagation_interval: float = 0.5
    #: DNS_ZONE_OVERRIDES: (name, zone) pairs, most specific first; a TXT name at or under
    #: ``name`` is written in ``zone`` without SOA discovery (split-horizon DNS)
    dns_zone_overrides: tuple[tuple[str, str], ...] = ()
    job_threads: int = 8
    #: seconds a job stays claimed without a heartbeat before another worker takes it over
    job_lease: float = 30.0
    #: the relay's own TLS certificate for RELAY_DOMAIN (jackdaw.relaycert): obtained through
    #: leg 2 and renewed by a background job; off = the operator provides nginx's certificate
    relay_cert_enabled: bool = True
    #: RELAY_CERT_DIR (fullchain.pem, privkey.pem); None = DATA_DIR/tls, see `relay_cert_path`
    relay_cert_dir: Path | None = None
    relay_cert_renew_days: int = 30
    #: seconds between checks whether the certificate needs renewal (the first runs at start)
    relay_cert_check_interval: float = 86400.0
    #: run after a new certificate was written (e.g. nginx -s reload); () = none
    relay_cert_reload_command: tuple[str, ...] = ()
    #: SIGHUP the process whose pid this file holds after a new certificate was written
    relay_cert_reload_pidfile: Path | None = None
    #: newAccount needs an external account binding (jackdaw eab add); meta.externalAccountRequired
    eab_required: bool = False
    #: proxies whose X-Forwarded-For names the client (JACKDAW_FORWARDED_ALLOW_IPS, as gunicorn)
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = LOOPBACK
    #: STATUS_TOKEN: `Authorization: Bearer` token that opens /status to a caller that is not
    #: an insider (jackdaw.wfe.status); None = insiders only
    status_token: str | None = field(default=None, repr=False)
    #: the upstream budget ledger (jackdaw.budget); each limit None = not counted
    budget_enabled: bool = True
    budget_new_orders: Limit | None = LE_NEW_ORDERS
    budget_certs_per_domain: Limit | None = LE_CERTS_PER_DOMAIN
    budget_certs_per_set: Limit | None = LE_CERTS_PER_SET
    budget_failed_authz: Limit | None = LE_FAILED_AUTHZ
    #: tokens of the account-wide and per-domain limits client orders leave for RELAY_DOMAIN
    budget_relay_reserve: int = 3
    #: the upstream profile for orders that name none (UPSTREAM_PROFILE); None = the CA's default
    upstream_profile: str | None = None
    #: profiles clients may ask for (PROFILES_ALLOWED); () = any the upstream CA offers
    profiles_allowed: tuple[str, ...] = ()
    #: the most names an order of a profile may hold (PROFILE_MAX_NAMES, "name=N,...")
    profile_max_names: tuple[tuple[str, int], ...] = (("tlsserver", 25),)
    #: seconds a profile the upstream CA stopped listing stays offered (a blip of the CA's
    #: directory must not break clients that name it; jackdaw.upstream.directory)
    upstream_profile_grace: float = 86400.0
    #: seconds between fetches of the upstream directory (one per interval across instances)
    upstream_directory_refresh: float = 600.0
    #: the upstream account's external account binding, for CAs that require one
    le_eab_kid: str | None = None
    le_eab_hmac_key: str | None = field(default=None, repr=False)
    #: days after expiry (and the last change) that orders are kept; None = forever (RETENTION_DAYS=0)
    retention_days: int | None = 30
    #: days a certificate is kept after it expired
    retention_cert_margin_days: int = 30
    #: seconds a challenge response, or a poll of a processing order, may wait for the work under way (wfe.settle)
    response_wait: float = 5.0
    #: gunicorn's request threads per worker (JACKDAW_THREADS): a response waits only while one is free
    request_threads: int = 4
    #: how leg 2 proves names upstream: dns-01, dns-persist-01 (a record published once), or auto
    upstream_challenge: str = "dns-01"
    #: notifications (jackdaw.notify); each threshold 0 = that event off
    notify_expiry_days: int = 10
    notify_order_failures: int = 3
    notify_budget_percent: int = 10
    #: delivery attempts per notification and channel (retried with back-off) before giving up
    notify_attempts: int = 8
    notify_timeout: float = 10.0
    notify_webhook_url: str | None = field(default=None, repr=False)  # may carry a token
    notify_webhook_secret: bytes | None = field(default=None, repr=False)
    notify_smtp_host: str | None = None
    notify_smtp_port: int = 587
    notify_smtp_security: str = "starttls"
    notify_smtp_user: str | None = None
    notify_smtp_password: str | None = field(default=None, repr=False)
    notify_email_from: str = ""
    notify_email_to: tuple[str, ...] = ()
    notify_command: tuple[str, ...] = ()
    notify_command_timeout: float = 30.0
    #: every remaining setting, for DNS providers (PORKBUN_API_KEY, RFC2136_NAMESERVER, ...), with
    #: each secret's value in place (jackdaw.credentials: read from NAME_FILE or a credential)
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    #: where each secret that is set came from: NAME -> "env", "file PATH" or "credential PATH"
    secret_sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def relay_cert_path(self) -> Path:
        """The directory holding the relay's own fullchain.pem and privkey.pem."""
        return self.relay_cert_dir if self.relay_cert_dir is not None else self.data_dir / "tls"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, dotenv: str | None = ".env") -> Settings:
        """Read settings; `.env` values fill in what the process environment leaves unset."""
        return cls.parse(envfile.merged_env(dotenv) if env is None else env)

    @classmethod
    def parse(cls, env: Mapping[str, str]) -> Settings:
        env, secret_sources = credentials.resolve(env)
        log_level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if log_level not in LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL: expected one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
        data_dir = Path(env.get("DATA_DIR", "").strip() or "data")
        database_url = envfile.database_url(env, data_dir)
        ca_bundle = env.get("UPSTREAM_CA_BUNDLE", "").strip() or None
        if ca_bundle:
            _readable_file("UPSTREAM_CA_BUNDLE", ca_bundle)
        le_directory = env.get("LE_DIRECTORY", "").strip() or LE_PRODUCTION
        dns_provider = envparse.required(env, "DNS_PROVIDER").lower()
        eab_kid, eab_hmac = env.get("LE_EAB_KID", "").strip() or None, env.get("LE_EAB_HMAC_KEY", "").strip() or None
        if (eab_kid is None) != (eab_hmac is None):
            raise ConfigError(f"{'LE_EAB_HMAC_KEY' if eab_kid else 'LE_EAB_KID'}: set LE_EAB_KID and LE_EAB_HMAC_KEY "
                              "together (the upstream CA's external account binding)")
        if not le_directory.startswith(("https://", "http://")) or not urlsplit(le_directory).hostname:
            raise ConfigError(f"LE_DIRECTORY: expected an https:// URL, got {le_directory!r}")
        return cls(
            relay_domain=_host_name(env, "RELAY_DOMAIN"),
            acme_email=_email(env, "ACME_EMAIL"),
            dns_provider=dns_provider,
            le_directory=le_directory,
            dns_propagation_wait=envparse.number(env, "DNS_PROPAGATION_WAIT", 0.0, minimum=0),
            allowed_domains=_base_domains(env, "ALLOWED_DOMAINS"),
            wildcard_domains=_base_domains(env, "WILDCARD_DOMAINS", wildcards=True),
            log_level=log_level,
            log_format=parse_log_format(env),
            challenge_http_port=envparse.integer(env, "CHALLENGE_HTTP_PORT", 80, minimum=1, maximum=65535),
            challenge_timeout=envparse.number(env, "CHALLENGE_TIMEOUT", 5.0, minimum=0.1),
            challenge_retries=envparse.integer(env, "CHALLENGE_RETRIES", 3, minimum=1),
            challenge_retry_delay=envparse.number(env, "CHALLENGE_RETRY_DELAY", 2.0, minimum=0),
            challenge_allow_loopback=envparse.boolean(env, "CHALLENGE_ALLOW_LOOPBACK", False),
            challenge_allowed_networks=_networks(env, "CHALLENGE_ALLOWED_NETWORKS"),
            data_dir=data_dir,
            database_url=database_url,
            upstream_ca_bundle=ca_bundle,
            upstream_key_passphrase=_passphrase(env, "UPSTREAM_KEY_PASSPHRASE"),
            dns_resolver=_resolver(env, "DNS_RESOLVER"),
            dns_authoritative_port=envparse.integer(env, "DNS_AUTHORITATIVE_PORT", 53, minimum=1, maximum=65535),
            dns_propagation_timeout=envparse.number(env, "DNS_PROPAGATION_TIMEOUT", 120.0, minimum=1.0),
            dns_propagation_interval=envparse.number(env, "DNS_PROPAGATION_INTERVAL", 0.5, minimum=0.05),
            dns_zone_overrides=_zone_overrides(env, "DNS_ZONE_OVERRIDES"),
            job_threads=envparse.integer(env, "JOB_THREADS", 8, minimum=1),
            job_lease=envparse.number(env, "JOB_LEASE_SECONDS", 30.0, minimum=1.0),
            relay_cert_enabled=envparse.boolean(env, "RELAY_CERT_ENABLED", True),
            relay_cert_dir=Path(env["RELAY_CERT_DIR"].strip()) if env.get("RELAY_CERT_DIR", "").strip() else None,
            relay_cert_renew_days=envparse.integer(env, "RELAY_CERT_RENEW_DAYS", 30, minimum=1, maximum=365),
            relay_cert_check_interval=envparse.number(env, "RELAY_CERT_CHECK_INTERVAL", 86400.0, minimum=1.0),
            relay_cert_reload_command=_command(env, "RELAY_CERT_RELOAD_COMMAND"),
            relay_cert_reload_pidfile=(Path(env["RELAY_CERT_RELOAD_PIDFILE"].strip())
                                       if env.get("RELAY_CERT_RELOAD_PIDFILE", "").strip() else None),
            eab_required=envparse.boolean(env, "EAB_REQUIRED", False),
            trusted_proxies=_proxies(env, "JACKDAW_FORWARDED_ALLOW_IPS"),
            status_token=_status_token(env),
            budget_enabled=envparse.boolean(env, "BUDGET_ENABLED", True),
            budget_new_orders=parse_limit("new-orders", env.get("BUDGET_NEW_ORDERS", "") or "300/3h",
                                          "BUDGET_NEW_ORDERS"),
            budget_certs_per_domain=parse_limit("certs-per-domain", env.get("BUDGET_CERTS_PER_DOMAIN", "") or "50/7d",
                                                "BUDGET_CERTS_PER_DOMAIN"),
            budget_certs_per_set=parse_limit("certs-per-set", env.get("BUDGET_CERTS_PER_SET", "") or "5/7d",
                                             "BUDGET_CERTS_PER_SET"),
            budget_failed_authz=parse_limit("failed-authz", env.get("BUDGET_FAILED_AUTHZ", "") or "5/1h",
                                            "BUDGET_FAILED_AUTHZ"),
            budget_relay_reserve=envparse.integer(env, "BUDGET_RELAY_RESERVE", 3, minimum=0),
            upstream_profile=env.get("UPSTREAM_PROFILE", "").strip() or None,
            profiles_allowed=tuple(p.strip() for p in env.get("PROFILES_ALLOWED", "").split(",") if p.strip()),
            profile_max_names=_max_names(env, "PROFILE_MAX_NAMES"),
            upstream_profile_grace=envparse.number(env, "UPSTREAM_PROFILE_GRACE", 86400.0, minimum=0),
            upstream_directory_refresh=envparse.number(env, "UPSTREAM_DIRECTORY_REFRESH", 600.0, minimum=1.0),
            le_eab_kid=eab_kid,
            le_eab_hmac_key=eab_hmac,
            upstream_challenge=_upstream_challenge(env, dns_provider),
            response_wait=envparse.number(env, "RESPONSE_WAIT", 5.0, minimum=0),
            request_threads=envparse.integer(env, "JACKDAW_THREADS", 4, minimum=1),
            retention_days=envparse.integer(env, "RETENTION_DAYS", 30, minimum=0) or None,
            retention_cert_margin_days=envparse.integer(env, "RETENTION_CERT_MARGIN_DAYS", 30, minimum=0),
            **_notify(env),
            env=env,
            secret_sources=secret_sources,
        )
