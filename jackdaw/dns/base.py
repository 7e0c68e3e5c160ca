"""The provider interface every DNS provider implements (lego/certbot style: thin adapters)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


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

    @classmethod
    @abstractmethod
    def from_env(cls, env: Mapping[str, str]) -> DNSProvider:
        """Build from environment-style settings; raise ConfigError naming the variable."""

    @abstractmethod
    def present(self, zone: str, fqdn: str, value: str) -> None: ...

    @abstractmethod
    def cleanup(self, zone: str, fqdn: str, value: str) -> None: ...
