"""Porkbun (JSON API v3, https://porkbun.com/api/json/v3/documentation): lego's ``porkbun``.

Every call is a POST whose JSON body carries ``apikey`` and ``secretapikey``; answers are
``{"status": "SUCCESS", ...}`` or ``{"status": "ERROR", "message": "..."}`` (any HTTP code other
than 200 is an error too). Porkbun throttles with HTTP 503 (about one request per second per
key, per Porkbun support) or an AWS WAF challenge (HTTP 202 with ``x-amzn-waf-action``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from jackdaw import envparse
from jackdaw.dns.base import ConfigError, DNSProvider, DNSProviderError

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.porkbun.com/api/json/v3"
MIN_TTL = 600  # Porkbun's documented minimum and default TTL
THROTTLED = frozenset({429, 503})






@dataclass(frozen=True)
class PorkbunConfig:
    api_key: str = field(repr=False)
    secret_api_key: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    ttl: int = MIN_TTL
    timeout: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PorkbunConfig:
        api_url = (env.get("PORKBUN_API_URL", "").strip() or DEFAULT_API_URL).rstrip("/")
        if not api_url.startswith(("https://", "http://")):
            raise ConfigError(f"PORKBUN_API_URL: must be an http(s) URL, got {api_url!r}")
        ttl = envparse.number(env, "PORKBUN_TTL", MIN_TTL, minimum=MIN_TTL)
        if ttl != int(ttl):
            raise ConfigError(f"PORKBUN_TTL: must be whole seconds, got {ttl!r}")
        return cls(
            api_key=envparse.required(env, "PORKBUN_API_KEY", "DNS_PROVIDER=porkbun"),
            secret_api_key=envparse.required(env, "PORKBUN_SECRET_API_KEY", "DNS_PROVIDER=porkbun"),
            api_url=api_url,
            ttl=int(ttl),
            timeout=envparse.number(env, "PORKBUN_HTTP_TIMEOUT", 30.0, minimum=1.0),
        )


class PorkbunProvider(DNSProvider):
    """Creates one TXT record per value and deletes exactly that record by its id."""

    name = "porkbun"
    env_keys = ("PORKBUN_API_KEY", "PORKBUN_API_URL", "PORKBUN_HTTP_TIMEOUT", "PORKBUN_SECRET_API_KEY", "PORKBUN_TTL")

    def __init__(self, config: PorkbunConfig, session: requests.Session | None = None) -> None:
        self.config = config
        self._session = session or requests.Session()
        self._ids: dict[tuple[str, str], str] = {}  # (fqdn, value) -> record id we created
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PorkbunProvider:
        return cls(PorkbunConfig.from_env(env))

    def present(self, zone: str, fqdn: str, value: str) -> None:
        zone, fqdn = _norm(zone), _norm(fqdn)
        body = {"name": _subdomain(zone, fqdn), "type": "TXT", "content": value, "ttl": str(self.config.ttl)}
        data = self._post(f"/dns/create/{zone}", body, f"create TXT {fqdn}")
        if data.get("id") in (None, ""):
            raise DNSProviderError(f"porkbun create TXT {fqdn}: answer carried no record id")
        record_id = str(data["id"])
        with self._lock:
            self._ids[(fqdn, value)] = record_id
        log.info("porkbun: created TXT %s (record %s)", fqdn, record_id)

    def cleanup(self, zone: str, fqdn: str, value: str) -> None:
        zone, fqdn = _norm(zone), _norm(fqdn)
        with self._lock:
            known = self._ids.get((fqdn, value))
        # after a restart the id is unknown: find the record by name and content, never by name alone
        record_ids = [known] if known else self._find(zone, fqdn, value)
        for record_id in record_ids:
            self._post(f"/dns/delete/{zone}/{record_id}", {}, f"delete TXT {fqdn} (record {record_id})")
            log.info("porkbun: deleted TXT %s (record %s)", fqdn, record_id)
        with self._lock:
            self._ids.pop((fqdn, value), None)

    def probe(self) -> str:
        """Porkbun's /ping: authenticated, changes nothing."""
        data = self._post("/ping", {}, "ping")
        return f"API keys accepted (Porkbun sees this relay as {data.get('yourIp', 'unknown')})"

    def _find(self, zone: str, fqdn: str, value: str) -> list[str]:
        path = f"/dns/retrieveByNameType/{zone}/TXT"
        subdomain = _subdomain(zone, fqdn)
        if subdomain:
            path += f"/{subdomain}"
        records = self._post(path, {}, f"look up TXT {fqdn}").get("records") or []
        return [str(r["id"]) for r in records if isinstance(r, dict) and r.get("content") in (value, f'"{value}"')]

    def _post(self, path: str, payload: dict[str, str], what: str) -> dict[str, Any]:
        body = {"secretapikey": self.config.secret_api_key, "apikey": self.config.api_key, **payload}
        try:
            response = self._session.post(self.config.api_url + path, json=body, timeout=self.config.timeout)
        except requests.RequestException as e:
            raise DNSProviderError(f"porkbun {what}: {type(e).__name__} talking to the Porkbun API") from e
        data = _json(response)
        status = response.status_code
        if status in THROTTLED or (status == 202 and "x-amzn-waf-action" in response.headers):
            raise DNSProviderError(
                f"porkbun {what}: rate limited (HTTP {status}); Porkbun allows about one request "
                "per second per API key, retry later"
            )
        if status != 200 or data.get("status") != "SUCCESS":
            message = self._redact(str(data.get("message") or f"HTTP {status}"))
            raise DNSProviderError(f"porkbun {what}: {message}{_hint(message)}")
        return data

    def _redact(self, text: str) -> str:
        for secret in (self.config.api_key, self.config.secret_api_key):
            text = text.replace(secret, "***")
        return text


def _hint(message: str) -> str:
    lowered = message.lower()
    if "api key" in lowered or "authentication" in lowered:
        return " (check PORKBUN_API_KEY and PORKBUN_SECRET_API_KEY)"
    if "domain" in lowered:
        return " (is the zone in this account with API ACCESS enabled in Porkbun's domain settings?)"
    return ""


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:  # throttling answers are HTML
        return {}
    return data if isinstance(data, dict) else {}


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _subdomain(zone: str, fqdn: str) -> str:
    """The record name relative to the zone ("" for the apex), as Porkbun's ``name`` wants it."""
    if fqdn == zone:
        return ""
    if not fqdn.endswith("." + zone):
        raise DNSProviderError(f"porkbun: {fqdn} is not inside zone {zone}")
    return fqdn[: -len(zone) - 1]
