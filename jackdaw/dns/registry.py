"""DNS_PROVIDER name -> provider class: built-ins here, third parties via entry points.

A third-party package registers ``[project.entry-points."jackdaw.dns_providers"]``
``myprovider = "pkg.module:MyProvider"``; built-in names win over entry points.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points

from jackdaw.dns.base import ConfigError, DNSProvider

ENTRY_POINT_GROUP = "jackdaw.dns_providers"

PROVIDERS: dict[str, str] = {
    "rfc2136": "jackdaw.dns.providers.rfc2136:RFC2136Provider",
    "porkbun": "jackdaw.dns.providers.porkbun:PorkbunProvider",
    "cloudflare": "jackdaw.dns.providers.cloudflare:CloudflareProvider",
    "route53": "jackdaw.dns.providers.route53:Route53Provider",
    "namecheap": "jackdaw.dns.providers.namecheap:NamecheapProvider",
    "acme-dns": "jackdaw.dns.providers.acme_dns:AcmeDNSProvider",
    "none": "jackdaw.dns.providers.none:NoProvider",
}


def _third_party() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_providers() -> list[str]:
    return sorted({**_third_party(), **PROVIDERS})


def _load(target: str) -> type[DNSProvider]:
    module_name, _, attr = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(obj, type) and issubclass(obj, DNSProvider)):
        raise ConfigError(f"DNS_PROVIDER: {target} is not a DNSProvider subclass")
    return obj


def provider_class(name: str) -> type[DNSProvider]:
    key = name.strip().lower()
    target = PROVIDERS.get(key) or _third_party().get(key)
    if target is None:
        known = ", ".join(known_providers())
        raise ConfigError(f"DNS_PROVIDER: unknown provider {name!r} (known: {known})")
    return _load(target)


def build_provider(name: str, env: Mapping[str, str]) -> DNSProvider:
    """The configured provider, checked now so bad settings fail at start-up."""
    return provider_class(name).from_env(env)
