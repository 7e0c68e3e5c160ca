"""acme-dns (https://github.com/joohoi/acme-dns) ``POST /update``: lego's ``acme-dns``.

Each name has its own acme-dns account; ``_acme-challenge.<name>`` is a CNAME to the
account's ``fulldomain``. ACME_DNS_CREDENTIALS is the JSON file lego and certbot-dns-acmedns
use: ``{"<name>": {"username", "password", "fulldomain", "subdomain"}}``. Registration (and
the CNAME) is done beforehand, outside Jackdaw.

Clean-up is deliberately a no-op: acme-dns has no delete call. It keeps the two most recent
TXT values of every subdomain and rolls the oldest out on each update (that is what lets a
name and its wildcard be validated together), so a stale value is overwritten by the next
issuance and only ever answers for that one subdomain.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from jackdaw import envparse
from jackdaw.dns.base import ConfigError, DNSProvider, DNSProviderError

log = logging.getLogger(__name__)

CHALLENGE_LABEL = "_acme-challenge."
ACCOUNT_FIELDS = ("username", "password", "fulldomain", "subdomain")


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    fulldomain: str
    subdomain: str

    def __repr__(self) -> str:  # never print the password
        return f"Account(username={self.username!r}, fulldomain={self.fulldomain!r})"


def load_accounts(path: Path) -> dict[str, Account]:
    """Domain (lower case, no trailing dot) -> account; ConfigError naming ACME_DNS_CREDENTIALS."""
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"ACME_DNS_CREDENTIALS: cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise ConfigError(f"ACME_DNS_CREDENTIALS: {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"ACME_DNS_CREDENTIALS: {path} must hold an object of domain -> account")
    accounts = {}
    for domain, entry in data.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"ACME_DNS_CREDENTIALS: entry {domain!r} must be an object")
        missing = [f for f in ACCOUNT_FIELDS if not isinstance(entry.get(f), str) or not entry[f].strip()]
        if missing:
            raise ConfigError(f"ACME_DNS_CREDENTIALS: entry {domain!r} lacks {', '.join(missing)}")
        accounts[_norm(domain)] = Account(**{f: entry[f].strip() for f in ACCOUNT_FIELDS})
    return accounts


@dataclass(frozen=True)
class AcmeDNSConfig:
    api_url: str
    credentials: Path
    timeout: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AcmeDNSConfig:
        api_url = env.get("ACME_DNS_API_URL", "").strip().rstrip("/")
        if not api_url:
            raise ConfigError("ACME_DNS_API_URL: required for DNS_PROVIDER=acme-dns")
        if not api_url.startswith(("https://", "http://")):
            raise ConfigError(f"ACME_DNS_API_URL: must be an http(s) URL, got {api_url!r}")
        credentials = env.get("ACME_DNS_CREDENTIALS", "").strip()
        if not credentials:
            raise ConfigError(
                "ACME_DNS_CREDENTIALS: required for DNS_PROVIDER=acme-dns (path to the JSON accounts file)"
            )
        timeout = envparse.number(env, "ACME_DNS_HTTP_TIMEOUT", 30.0, positive=True)
        return cls(api_url=api_url, credentials=Path(credentials), timeout=timeout)


class AcmeDNSProvider(DNSProvider):
    """Writes the value into the name's acme-dns subdomain; clean-up leaves it to roll out."""

    name = "acme-dns"
    env_keys = ("ACME_DNS_API_URL", "ACME_DNS_CREDENTIALS", "ACME_DNS_HTTP_TIMEOUT")

    def __init__(self, config: AcmeDNSConfig, accounts: dict[str, Account],
                 session: requests.Session | None = None) -> None:
        self.config = config
        self._accounts = accounts
        self._session = session or requests.Session()
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AcmeDNSProvider:
        config = AcmeDNSConfig.from_env(env)
        return cls(config, load_accounts(config.credentials))

    def present(self, zone: str, fqdn: str, value: str) -> None:
        fqdn = _norm(fqdn)
        account = self._account(fqdn)
        headers = {"X-Api-User": account.username, "X-Api-Key": account.password}
        body = {"subdomain": account.subdomain, "txt": value}
        what = f"update TXT for {fqdn} (acme-dns {account.fulldomain})"
        try:
            response = self._session.post(
                self.config.api_url + "/update", json=body, headers=headers, timeout=self.config.timeout
            )
        except requests.RequestException as e:
            raise DNSProviderError(f"acme-dns {what}: {type(e).__name__} talking to the acme-dns API") from e
        if response.status_code == 200:
            log.info("acme-dns: updated TXT of %s", account.fulldomain)
            return
        detail = _error(response).replace(account.password, "***")
        if response.status_code == 429:
            raise DNSProviderError(f"acme-dns {what}: rate limited (HTTP 429); retry later")
        if response.status_code in (401, 403):
            raise DNSProviderError(
                f"acme-dns {what}: authentication failed (HTTP {response.status_code}: {detail}); check the "
                "username/password/subdomain of this name in ACME_DNS_CREDENTIALS and the account's allowfrom"
            )
        raise DNSProviderError(f"acme-dns {what}: HTTP {response.status_code}: {detail}")

    def probe(self) -> str:
        """acme-dns has no authenticated read: GET /health shows the API answers (the
        credentials file was read at start)."""
        try:
            response = self._session.get(self.config.api_url + "/health", timeout=self.config.timeout)
        except requests.RequestException as e:
            raise DNSProviderError(f"acme-dns health: {type(e).__name__} talking to the acme-dns API") from e
        if response.status_code != 200:
            raise DNSProviderError(f"acme-dns health: HTTP {response.status_code}")
        return (f"the API answers; {len(self._accounts)} account(s) in ACME_DNS_CREDENTIALS (acme-dns has no "
                "read-only call that checks them)")

    def cleanup(self, zone: str, fqdn: str, value: str) -> None:
        """Nothing to do: acme-dns keeps only the two newest values per subdomain (see module doc)."""

    def _account(self, fqdn: str) -> Account:
        """The account for ``_acme-challenge.<name>`` by name, or for a followed CNAME by fulldomain."""
        for reload in (False, True):
            with self._lock:
                if reload:  # registered since start-up? read the file again, once
                    self._accounts = self._reload()
                account = self._match(fqdn)
            if account is not None:
                return account
        domain = fqdn.removeprefix(CHALLENGE_LABEL)
        raise DNSProviderError(
            f"acme-dns: no account for {domain} in ACME_DNS_CREDENTIALS "
            f"(register it with acme-dns and CNAME {CHALLENGE_LABEL}{domain} to its fulldomain)"
        )

    def _reload(self) -> dict[str, Account]:
        try:
            return load_accounts(self.config.credentials)
        except ConfigError as e:
            raise DNSProviderError(f"acme-dns: {e}") from None

    def _match(self, fqdn: str) -> Account | None:
        if fqdn.startswith(CHALLENGE_LABEL):
            domain = fqdn.removeprefix(CHALLENGE_LABEL)
            for key in (domain, "*." + domain):
                if key in self._accounts:
                    return self._accounts[key]
        return next((a for a in self._accounts.values() if _norm(a.fulldomain) == fqdn), None)


def _error(response: requests.Response) -> str:
    try:
        data: Any = response.json()
    except ValueError:
        return "no detail"
    return str(data.get("error", "no detail")) if isinstance(data, dict) else "no detail"


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()
