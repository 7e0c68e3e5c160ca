"""DNS_PROVIDER lookup: the built-in table, and third-party providers via entry points."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from jackdaw.dns.base import ConfigError, DNSProvider
from jackdaw.dns.registry import ENTRY_POINT_GROUP, PROVIDERS, build_provider, known_providers

PLUGIN = '''
from jackdaw.dns.base import ConfigError, DNSProvider

class ExampleProvider(DNSProvider):
    name = "example-dns"
    written: list = []

    def __init__(self, token):
        self.token = token

    @classmethod
    def from_env(cls, env):
        if not env.get("EXAMPLE_DNS_TOKEN"):
            raise ConfigError("EXAMPLE_DNS_TOKEN: required but not set")
        return cls(env["EXAMPLE_DNS_TOKEN"])

    def present(self, zone, fqdn, value):
        self.written.append((zone, fqdn, value))

    def cleanup(self, zone, fqdn, value):
        self.written.remove((zone, fqdn, value))

class NotAProvider:
    pass
'''


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[None]:
    """An installed third-party distribution, as pip would lay it out."""
    (tmp_path / "example_dns_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "example_dns_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: example-dns-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nexample-dns = example_dns_plugin:ExampleProvider\n"
        "broken = example_dns_plugin:NotAProvider\nrfc2136 = example_dns_plugin:ExampleProvider\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield
    sys.path.remove(str(tmp_path))
    sys.modules.pop("example_dns_plugin", None)


def test_builtins_are_known() -> None:
    assert set(PROVIDERS) <= set(known_providers())
    assert {"rfc2136", "porkbun", "cloudflare", "route53", "namecheap", "acme-dns"} <= set(PROVIDERS)


def test_third_party_provider_is_found_by_name(plugin: None) -> None:
    env: Mapping[str, str] = {"EXAMPLE_DNS_TOKEN": "t0k3n"}
    provider = build_provider("Example-DNS", env)
    assert isinstance(provider, DNSProvider) and type(provider).__name__ == "ExampleProvider"
    assert "example-dns" in known_providers()
    with pytest.raises(ConfigError, match="EXAMPLE_DNS_TOKEN"):
        build_provider("example-dns", {})


def test_builtin_wins_over_an_entry_point_of_the_same_name(plugin: None) -> None:
    env = {"RFC2136_NAMESERVER": "127.0.0.1", "RFC2136_TSIG_KEY": "k", "RFC2136_TSIG_SECRET": "c2VjcmV0"}
    assert type(build_provider("rfc2136", env)).__name__ == "RFC2136Provider"


def test_entry_point_that_is_not_a_provider_is_refused(plugin: None) -> None:
    with pytest.raises(ConfigError, match="not a DNSProvider"):
        build_provider("broken", {})


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"DNS_PROVIDER: unknown provider 'nope' \(known: .*porkbun"):
        build_provider("nope", {})
