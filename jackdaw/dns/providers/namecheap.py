"""Namecheap XML API (https://www.namecheap.com/support/api/): lego's ``namecheap``.

``namecheap.domains.dns.setHosts`` REPLACES the whole host list of a domain ("All host records
that are not included into the API call will be deleted"), so present and clean-up read the
list with ``getHosts``, add or remove only our TXT host, and write every other host back as it
was (HostName, RecordType, Address, MXPref, TTL), together with the domain's EmailType, all
in one call for all the values at hand, then read the list back to verify it. The relay runs
every change of a zone in that zone's job (jackdaw.upstream.dns01), whose database claim keeps
two workers or instances from interleaving their read-modify-writes. Calls are POSTed so the
API key never appears in a URL. Namecheap answers HTTP 405 when it rate-limits (20/min, 700/hour, 8000/day).
"""

from __future__ import annotations

import ipaddress
import logging
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import requests

from jackdaw import envparse
from jackdaw.dns.base import ConfigError, DNSProvider, DNSProviderError

log = logging.getLogger(__name__)

PRODUCTION_URL = "https://api.namecheap.com/xml.response"
SANDBOX_URL = "https://api.sandbox.namecheap.com/xml.response"
THROTTLED = frozenset({405, 429})
AUTH_ERRORS = frozenset({"1010101", "1010102", "1011102", "1011150", "1017150", "1017105", "1017101",
                         "1017411", "1019103", "1016103", "1017103", "1050900"})
ZONE_ERRORS = frozenset({"2019166", "2016166", "2030166"})
HOST_FIELDS = ("Name", "Type", "Address", "MXPref", "TTL")
TRUE, FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"", "0", "false", "no", "off"})


def _api_url(env: Mapping[str, str]) -> str:
    url = env.get("NAMECHEAP_API_URL", "").strip()
    if url:
        if not url.startswith(("https://", "http://")):
            raise ConfigError(f"NAMECHEAP_API_URL: must be an http(s) URL, got {url!r}")
        return url
    sandbox = env.get("NAMECHEAP_SANDBOX", "").strip().lower()
    if sandbox not in TRUE | FALSE:
        raise ConfigError(f"NAMECHEAP_SANDBOX: must be true or false, got {sandbox!r}")
    return SANDBOX_URL if sandbox in TRUE else PRODUCTION_URL


@dataclass(frozen=True)
class NamecheapConfig:
    api_user: str
    api_key: str = field(repr=False)
    username: str
    client_ip: str
    api_url: str = PRODUCTION_URL
    ttl: int = 120
    timeout: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> NamecheapConfig:
        api_user = envparse.required(env, "NAMECHEAP_API_USER", "DNS_PROVIDER=namecheap")
        api_key = envparse.required(env, "NAMECHEAP_API_KEY", "DNS_PROVIDER=namecheap")
        client_ip = envparse.required(env, "NAMECHEAP_CLIENT_IP", "DNS_PROVIDER=namecheap")
        try:
            ipaddress.IPv4Address(client_ip)
        except ValueError:
            raise ConfigError(f"NAMECHEAP_CLIENT_IP: must be an IPv4 address, got {client_ip!r}") from None
        return cls(
            api_user=api_user,
            api_key=api_key,
            username=env.get("NAMECHEAP_USERNAME", "").strip() or api_user,
            client_ip=client_ip,
            api_url=_api_url(env),
            ttl=envparse.integer(env, "NAMECHEAP_TTL", 120, minimum=60, maximum=60000),
            timeout=float(envparse.integer(env, "NAMECHEAP_HTTP_TIMEOUT", 60, minimum=1, maximum=600)),
        )


class NamecheapProvider(DNSProvider):
    """Read-modify-write of the domain's host list, touching only our own TXT host."""

    name = "namecheap"
    env_keys = (
        "NAMECHEAP_API_KEY",
        "NAMECHEAP_API_URL",
        "NAMECHEAP_API_USER",
        "NAMECHEAP_CLIENT_IP",
        "NAMECHEAP_HTTP_TIMEOUT",
        "NAMECHEAP_SANDBOX",
        "NAMECHEAP_TTL",
        "NAMECHEAP_USERNAME",
    )

    def __init__(self, config: NamecheapConfig, session: requests.Session | None = None) -> None:
        self.config = config
        self._session = session or requests.Session()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> NamecheapProvider:
        return cls(NamecheapConfig.from_env(env))

    def present(self, zone: str, fqdn: str, value: str) -> None:
        self.present_many(zone, [(fqdn, value)])

    def cleanup(self, zone: str, fqdn: str, value: str) -> None:
        self.cleanup_many(zone, [(fqdn, value)])

    def present_many(self, zone: str, records: Sequence[tuple[str, str]]) -> None:
        """One read-modify-write adds them all, then a read checks they are all there."""
        zone = _norm(zone)
        ours = [(_host_name(zone, _norm(fqdn)), value) for fqdn, value in records]
        hosts, email_type = self._get_hosts(zone)
        new = [(host, value) for host, value in dict.fromkeys(ours)
               if not any(_is_ours(h, host, value) for h in hosts)]
        if not new:
            return  # a retried present
        added = [{"Name": host, "Type": "TXT", "Address": value, "MXPref": "10", "TTL": str(self.config.ttl)}
                 for host, value in new]
        what = f"add TXT {_what(zone, new)}"
        self._set_hosts(zone, [*hosts, *added], email_type, what)
        self._verify(zone, hosts, present=ours, absent=[], what=what)
        log.info("namecheap: %s", what)

    def cleanup_many(self, zone: str, records: Sequence[tuple[str, str]]) -> None:
        zone = _norm(zone)
        gone = [(_host_name(zone, _norm(fqdn)), value) for fqdn, value in records]
        hosts, email_type = self._get_hosts(zone)
        rest = [h for h in hosts if not any(_is_ours(h, host, value) for host, value in gone)]
        if len(rest) == len(hosts):
            return  # already gone
        what = f"remove TXT {_what(zone, gone)}"
        self._set_hosts(zone, rest, email_type, what)
        self._verify(zone, rest, present=[], absent=gone, what=what)
        log.info("namecheap: %s", what)

    def probe(self) -> str:
        """namecheap.domains.getList: authenticated (ApiUser, ApiKey, ClientIp whitelisted), read-only."""
        root = self._call("namecheap.domains.getList", {"PageSize": "20"}, "list domains")
        names = [d.get("Name", "") for d in root.iter() if _local(d.tag) == "Domain"]
        return f"API access accepted; {len(names)} domain(s) listed: {', '.join(names[:5]) or 'none'}"

    def _verify(self, zone: str, kept: list[dict[str, str]], *, present: list[tuple[str, str]],
                absent: list[tuple[str, str]], what: str) -> None:
        """setHosts replaces the whole list: read it back, so a write that raced another writer
        of the zone (outside Jackdaw) is an error here instead of a lost value later."""
        hosts, _ = self._get_hosts(zone)
        missing = [f"{h}={v}" for h, v in present if not any(_is_ours(x, h, v) for x in hosts)]
        missing += [f"{x['Name']} {x['Type']}" for x in kept if not any(_same(x, y) for y in hosts)]
        lingering = [f"{h}={v}" for h, v in absent if any(_is_ours(x, h, v) for x in hosts)]
        if missing or lingering:
            raise DNSProviderError(f"namecheap {what}: the host list read back differs (missing: "
                                   f"{', '.join(missing) or 'none'}; still there: {', '.join(lingering) or 'none'}); "
                                   "was the zone changed by someone else at the same time?")

    def _get_hosts(self, zone: str) -> tuple[list[dict[str, str]], str]:
        root = self._call("namecheap.domains.dns.getHosts", _split(zone), f"read hosts of {zone}")
        result = _find(root, "DomainDNSGetHostsResult")
        if result is None:
            raise DNSProviderError(f"namecheap read hosts of {zone}: answer has no DomainDNSGetHostsResult")
        hosts = [
            {k: child.get(k, "") for k in HOST_FIELDS}
            for child in result
            if _local(child.tag).lower() == "host"  # the docs say <Host>, the live API sends <host>
        ]
        return hosts, result.get("EmailType", "")

    def _set_hosts(self, zone: str, hosts: list[dict[str, str]], email_type: str, what: str) -> None:
        params = _split(zone)
        for i, h in enumerate(hosts, start=1):
            params |= {f"HostName{i}": h["Name"], f"RecordType{i}": h["Type"], f"Address{i}": h["Address"],
                       f"MXPref{i}": h["MXPref"] or "10", f"TTL{i}": h["TTL"] or "1800"}
        if email_type:
            params["EmailType"] = email_type
        result = _find(self._call("namecheap.domains.dns.setHosts", params, what), "DomainDNSSetHostsResult")
        if result is None or result.get("IsSuccess", "").lower() != "true":
            raise DNSProviderError(f"namecheap {what}: setHosts did not report IsSuccess=true")

    def _call(self, command: str, params: dict[str, str], what: str) -> ET.Element:
        form = {"ApiUser": self.config.api_user, "ApiKey": self.config.api_key, "UserName": self.config.username,
                "ClientIp": self.config.client_ip, "Command": command, **params}
        try:
            response = self._session.post(self.config.api_url, data=form, timeout=self.config.timeout)
        except requests.RequestException as e:
            raise DNSProviderError(f"namecheap {what}: {type(e).__name__} talking to the Namecheap API") from e
        if response.status_code in THROTTLED:
            raise DNSProviderError(f"namecheap {what}: rate limited (HTTP {response.status_code}); "
                                   "Namecheap allows 20 calls a minute, retry later")
        if response.status_code != 200:
            raise DNSProviderError(f"namecheap {what}: HTTP {response.status_code}")
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError:
            raise DNSProviderError(f"namecheap {what}: answer is not XML") from None
        if root.get("Status", "").upper() != "OK":
            raise DNSProviderError(f"namecheap {what}: {self._errors(root)}")
        return root

    def _errors(self, root: ET.Element) -> str:
        errors = [(e.get("Number", ""), (e.text or "").strip()) for e in root.iter() if _local(e.tag) == "Error"]
        text = "; ".join(f"{number}: {message}" for number, message in errors) or "Status is not OK"
        text = text.replace(self.config.api_key, "***")
        numbers = {number for number, _ in errors}
        if numbers & AUTH_ERRORS:
            text += (" (check NAMECHEAP_API_USER, NAMECHEAP_API_KEY, NAMECHEAP_USERNAME, and that "
                     "NAMECHEAP_CLIENT_IP is whitelisted)")
        elif numbers & ZONE_ERRORS:
            text += " (is the zone registered in this Namecheap account and using Namecheap DNS?)"
        return text


def _is_ours(host: dict[str, str], name: str, value: str) -> bool:
    return host["Type"].upper() == "TXT" and host["Name"].lower() == name and host["Address"] == value


def _same(a: dict[str, str], b: dict[str, str]) -> bool:
    return (a["Name"].lower(), a["Type"].upper(), a["Address"]) == (b["Name"].lower(), b["Type"].upper(), b["Address"])


def _what(zone: str, hosts: Sequence[tuple[str, str]]) -> str:
    names = sorted({f"{h}.{zone}" if h != "@" else zone for h, _ in hosts})
    return names[0] if len(hosts) == 1 else f"{names[0]} and {len(hosts) - 1} more"


def _find(root: ET.Element, name: str) -> ET.Element | None:
    return next((e for e in root.iter() if _local(e.tag) == name), None)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _split(zone: str) -> dict[str, str]:
    """Namecheap's SLD/TLD of the registered domain: ``example.co.uk`` -> ``example`` / ``co.uk``."""
    sld, _, tld = zone.partition(".")
    if not sld or not tld:
        raise DNSProviderError(f"namecheap: {zone!r} is not a registered domain (SLD.TLD)")
    return {"SLD": sld, "TLD": tld}


def _host_name(zone: str, fqdn: str) -> str:
    if fqdn == zone:
        return "@"
    if not fqdn.endswith("." + zone):
        raise DNSProviderError(f"namecheap: {fqdn} is not inside zone {zone}")
    return fqdn[: -len(zone) - 1]
