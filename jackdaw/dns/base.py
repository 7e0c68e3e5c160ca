"""The provider interface every DNS provider implements (lego/certbot style: thin adapters)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar

from jackdaw.envparse import ConfigError

__all__ = ["ConfigError", "DNSProvider", "DNSProviderError"]


class DNSProviderError(RuntimeError):
    """The provider's API refused or failed a request."""


class DNSProvider(ABC):
    """Writes and removes one TXT value at a time.

    ``zone`` is the zone apex that holds ``fqdn`` (both absolute, without trailing dot),
    ``fqdn`` is the full record name (``_acme-challenge.host.example.com``) and ``value`` the
    TXT string. ``cleanup`` removes exactly that value and leaves other values of the same
    name alone (a wildcard and its base name share one record name).
    """

    #: the DNS_PROVIDER value that selects this provider
    name: ClassVar[str]
    #: seconds to wait after the authoritative servers serve the value (provider caches)
    settle_seconds: ClassVar[float] = 0.0
    #: every environment key ``from_env`` reads: `jackdaw check` takes others with the
    #: provider's prefix for typos (a test holds this to the module's source)
    env_keys: ClassVar[tuple[str, ...]] = ()

    @classmethod
    @abstractmethod
    def from_env(cls, env: Mapping[str, str]) -> DNSProvider:
        """Build from environment-style settings; raise ConfigError naming the variable."""

    @abstractmethod
    def present(self, zone: str, fqdn: str, value: str) -> None: ...

    @abstractmethod
    def cleanup(self, zone: str, fqdn: str, value: str) -> None: ...

    # Batches: a zone's job hands over every value it has at once. Providers whose API can
    # change several records in one call override these (RFC 2136: one UPDATE message).

    def present_many(self, zone: str, records: Sequence[tuple[str, str]]) -> None:
        for fqdn, value in records:
            self.present(zone, fqdn, value)

    def cleanup_many(self, zone: str, records: Sequence[tuple[str, str]]) -> None:
        for fqdn, value in records:
            self.cleanup(zone, fqdn, value)

    def probe(self) -> str | None:
        """One read-only call proving the credentials work (`jackdaw check --online`): what it
        checked, or None where the provider has no such call (then `jackdaw dns-check NAME`
        writes and removes a test record). Raise DNSProviderError when it fails."""
        return None

    def pending(self, zone: str, records: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """The records whose change the provider still reports as in progress (Route 53's
        PENDING); one quick call, never a wait. The name servers are probed for the rest."""
        return set()
