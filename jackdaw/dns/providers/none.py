"""``DNS_PROVIDER=none``: no DNS credentials at all. Leg 2 then proves names only with
dns-persist-01 records published once by the operator (UPSTREAM_CHALLENGE=dns-persist-01)."""

from __future__ import annotations

from collections.abc import Mapping

from jackdaw.dns.base import DNSProvider, DNSProviderError


class NoProvider(DNSProvider):
    name = "none"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> NoProvider:
        return cls()

    def present(self, zone: str, fqdn: str, value: str) -> None:
        raise DNSProviderError(f"DNS_PROVIDER=none writes no DNS records (asked for TXT {fqdn}); publish a "
                               "dns-persist-01 record instead: jackdaw dns-persist show NAME")

    def cleanup(self, zone: str, fqdn: str, value: str) -> None:
        pass  # nothing was ever written

    def probe(self) -> str:
        return "no DNS credentials to check (dns-persist-01 records only)"
