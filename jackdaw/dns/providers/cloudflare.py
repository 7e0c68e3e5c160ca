"""Cloudflare (API v4, https://developers.cloudflare.com/api/): lego's ``cloudflare``.

Bearer-token auth. Every answer is the envelope ``{"success": bool, "errors": [{"code",
"message"}], "messages": [], "result": ...}``. TXT ``content`` is sent as a quoted RFC 1035
character-string: Cloudflare's API reference says "The content must consist of quoted
character strings" and warns about unquoted ones (lego did the same in go-acme/lego#2521).
The global limit is 1200 requests per five minutes; past it the API answers HTTP 429.
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

DEFAULT_API_URL = "https://api.cloudflare.com/client/v4"
IDENTICAL_RECORD_EXISTS = 81058
RECORD_DOES_NOT_EXIST = 81044


class CloudflareAPIError(DNSProviderError):
    def __init__(self, message: str, status: int, codes: frozenset[int]) -> None:
        super().__init__(message)
        self.status = status
        self.codes = codes




@dataclass(frozen=True)
class CloudflareConfig:
    api_token: str = field(repr=False)
    zone_id: str | None = None
    api_url: str = DEFAULT_API_URL
    ttl: int = 60
    timeout: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CloudflareConfig:
        token = env.get("CLOUDFLARE_API_TOKEN", "").strip()
        if not token:
            raise ConfigError("CLOUDFLARE_API_TOKEN: required for DNS_PROVIDER=cloudflare (a token with DNS:Edit)")
        api_url = (env.get("CLOUDFLARE_API_URL", "").strip() or DEFAULT_API_URL).rstrip("/")
        if not api_url.startswith(("https://", "http://")):
            raise ConfigError(f"CLOUDFLARE_API_URL: must be an http(s) URL, got {api_url!r}")
        ttl = envparse.number(env, "CLOUDFLARE_TTL", 60)
        if ttl != int(ttl) or not (ttl == 1 or 60 <= ttl <= 86400):
            raise ConfigError(f"CLOUDFLARE_TTL: must be 1 (automatic) or 60..86400 seconds, got {ttl:g}")
        timeout = envparse.number(env, "CLOUDFLARE_HTTP_TIMEOUT", 30.0)
        if timeout <= 0:
            raise ConfigError(f"CLOUDFLARE_HTTP_TIMEOUT: must be positive, got {timeout:g}")
        return cls(
            api_token=token,
            zone_id=env.get("CLOUDFLARE_ZONE_ID", "").strip() or None,
            api_url=api_url,
            ttl=int(ttl),
            timeout=timeout,
        )


class CloudflareProvider(DNSProvider):
    """One DNS record per value; clean-up deletes that record id and nothing else."""

    name = "cloudflare"
    env_keys = (
        "CLOUDFLARE_API_TOKEN",
        "CLOUDFLARE_API_URL",
        "CLOUDFLARE_HTTP_TIMEOUT",
        "CLOUDFLARE_TTL",
        "CLOUDFLARE_ZONE_ID",
    )

    def __init__(self, config: CloudflareConfig, session: requests.Session | None = None) -> None:
        self.config = config
        self._session = session or requests.Session()
        self._zone_ids: dict[str, str] = {}
        self._ids: dict[tuple[str, str], str] = {}  # (fqdn, value) -> record id we created
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CloudflareProvider:
        return cls(CloudflareConfig.from_env(env))

    def present(self, zone: str, fqdn: str, value: str) -> None:
        zone, fqdn = _norm(zone), _norm(fqdn)
        zone_id = self._zone_id(zone)
        body = {"type": "TXT", "name": fqdn, "content": _quote(value), "ttl": self.config.ttl}
        what = f"create TXT {fqdn}"
        try:
            result = self._call("POST", f"/zones/{zone_id}/dns_records", what, json=body)
            record_id = str(result["id"])
        except CloudflareAPIError as e:
            if IDENTICAL_RECORD_EXISTS not in e.codes:
                raise
            found = self._find(zone_id, fqdn, value)  # a retried present: adopt the existing record
            if not found:
                raise
            record_id = found[0]
        except (KeyError, TypeError):
            raise DNSProviderError(f"cloudflare {what}: answer carried no record id") from None
        with self._lock:
            self._ids[(fqdn, value)] = record_id
        log.info("cloudflare: created TXT %s (record %s)", fqdn, record_id)

    def cleanup(self, zone: str, fqdn: str, value: str) -> None:
        zone, fqdn = _norm(zone), _norm(fqdn)
        zone_id = self._zone_id(zone)
        with self._lock:
            known = self._ids.get((fqdn, value))
        record_ids = [known] if known else self._find(zone_id, fqdn, value)
        for record_id in record_ids:
            what = f"delete TXT {fqdn} (record {record_id})"
            try:
                self._call("DELETE", f"/zones/{zone_id}/dns_records/{record_id}", what)
            except CloudflareAPIError as e:
                if e.status != 404 and RECORD_DOES_NOT_EXIST not in e.codes:
                    raise
            log.info("cloudflare: deleted TXT %s (record %s)", fqdn, record_id)
        with self._lock:
            self._ids.pop((fqdn, value), None)

    def probe(self) -> str:
        """The configured zone, or the zones the token can see: GET only."""
        if self.config.zone_id:
            result = self._call("GET", f"/zones/{self.config.zone_id}", "read zone CLOUDFLARE_ZONE_ID")
            return f"token reads zone {result.get('name') if isinstance(result, dict) else self.config.zone_id}"
        result = self._call("GET", "/zones", "list zones", params={"per_page": "50"})
        names = [str(z.get("name")) for z in result or [] if isinstance(z, dict)]
        if not names:
            raise DNSProviderError("cloudflare list zones: the token sees no zone (check its zone resources)")
        return f"token sees {len(names)} zone(s): {', '.join(names[:5])}"

    def _zone_id(self, zone: str) -> str:
        if self.config.zone_id:
            return self.config.zone_id
        with self._lock:
            cached = self._zone_ids.get(zone)
        if cached:
            return cached
        result = self._call("GET", "/zones", f"look up zone {zone}", params={"name": zone})
        matches = [z for z in result or [] if isinstance(z, dict) and _norm(str(z.get("name", ""))) == zone]
        if not matches:
            raise DNSProviderError(
                f"cloudflare: no zone named {zone} is visible to this token "
                "(check the token's zone resources, or set CLOUDFLARE_ZONE_ID)"
            )
        zone_id = str(matches[0]["id"])
        with self._lock:
            self._zone_ids[zone] = zone_id
        return zone_id

    def _find(self, zone_id: str, fqdn: str, value: str) -> list[str]:
        """Record ids at ``fqdn`` whose content is ``value``, quoted or not (other tools differ)."""
        params = {"type": "TXT", "name": fqdn, "per_page": "100"}
        result = self._call("GET", f"/zones/{zone_id}/dns_records", f"look up TXT {fqdn}", params=params)
        return [
            str(r["id"])
            for r in result or []
            if isinstance(r, dict) and r.get("content") in (value, _quote(value))
        ]

    def _call(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.config.api_token}"}
        try:
            response = self._session.request(
                method, self.config.api_url + path, headers=headers, timeout=self.config.timeout, **kwargs
            )
        except requests.RequestException as e:
            raise DNSProviderError(f"cloudflare {what}: {type(e).__name__} talking to the Cloudflare API") from e
        envelope = _json(response)
        errors = [e for e in envelope.get("errors") or [] if isinstance(e, dict)]
        codes = frozenset(int(e["code"]) for e in errors if isinstance(e.get("code"), int))
        detail = self._redact("; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors))
        status = response.status_code
        if status == 429:
            retry = response.headers.get("Retry-After")
            after = f", retry after {retry} s" if retry else ""
            message = f"cloudflare {what}: rate limited (HTTP 429{after}) {detail}".rstrip()
            raise CloudflareAPIError(message, status, codes)
        if status in (401, 403):
            raise CloudflareAPIError(
                f"cloudflare {what}: authentication failed (HTTP {status}: {detail or 'no detail'}); "
                "check CLOUDFLARE_API_TOKEN and its Zone:Read and DNS:Edit permissions",
                status,
                codes,
            )
        if status >= 400 or envelope.get("success") is False:  # "Delete DNS Record" documents {"result"} only
            raise CloudflareAPIError(f"cloudflare {what}: HTTP {status}: {detail or 'no detail'}", status, codes)
        return envelope.get("result")

    def _redact(self, text: str) -> str:
        return text.replace(self.config.api_token, "***")


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
