"""`jackdaw check --online`: connect to everything the settings name, read-only.

Each check is one line, OK or FAIL with the reason; nothing is written (no database is created,
no account registered, no DNS record changed). The offline `jackdaw check` only parses settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import dns.resolver
import requests
from cryptography import x509
from sqlalchemy.exc import SQLAlchemyError

from jackdaw.dns.base import DNSProvider, DNSProviderError
from jackdaw.dns.resolver import DNSLookupError, find_zone, make_resolver, resolve_addresses
from jackdaw.settings import Settings

#: seconds for each network check: an operator is waiting
TIMEOUT = 5.0


@dataclass(frozen=True)
class Outcome:
    name: str
    ok: bool
    detail: str
    #: the settings this check tests, named on its line: what to change when it fails
    settings: tuple[str, ...] = ()

    def line(self) -> str:
        named = f" ({', '.join(self.settings)})" if self.settings else ""
        return f"{'OK  ' if self.ok else 'FAIL'}  {self.name}{named}: {self.detail}"


class CheckFailed(Exception):
    """One check did not pass; the message is the reason."""


def _provider_settings(settings: Settings) -> tuple[str, ...]:
    """DNS_PROVIDER and the provider's keys that are set (its credentials, its server)."""
    from jackdaw.ops.config import provider_keys

    return ("DNS_PROVIDER", *(k for k in provider_keys(settings) if settings.env.get(k, "").strip()))


def run_checks(settings: Settings, provider: DNSProvider) -> list[Outcome]:
    database_key = "DATABASE_URL" if settings.env.get("DATABASE_URL", "").strip() else "DATA_DIR"
    checks: list[tuple[str, tuple[str, ...], Callable[[], str]]] = [
        ("database", (database_key,), lambda: database(settings)),
        ("UPSTREAM_CA_BUNDLE", (), lambda: ca_bundle(settings)),
        ("upstream directory", ("LE_DIRECTORY",), lambda: upstream_directory(settings)),
        (f"DNS provider {settings.dns_provider}", _provider_settings(settings), lambda: dns_provider(provider)),
    ]
    outcomes = []
    for name, keys, check in checks:
        try:
            outcomes.append(Outcome(name, True, check(), keys))
        except CheckFailed as exc:
            outcomes.append(Outcome(name, False, str(exc), keys))
    resolver, authoritative = ("DNS_RESOLVER",), ("DNS_AUTHORITATIVE_PORT",)
    try:
        found, served = resolver_and_authoritative(settings)
        outcomes += [Outcome("resolver", True, found, resolver),
                     Outcome("authoritative servers", True, served, authoritative)]
    except _Partial as exc:
        outcomes += [Outcome("resolver", True, exc.found, resolver),
                     Outcome("authoritative servers", False, str(exc), authoritative)]
    except CheckFailed as exc:
        outcomes += [Outcome("resolver", False, str(exc), resolver),
                     Outcome("authoritative servers", False, "not checked: the resolver found no zone", authoritative)]
    return outcomes


def database(settings: Settings) -> str:
    from jackdaw import migrate
    from jackdaw.db import make_engine
    from jackdaw.envfile import location_named
    from jackdaw.ops.commands import Failed, one_line, require_database

    if not location_named(settings.env):
        raise CheckFailed("neither DATA_DIR nor DATABASE_URL is set: no database named (the CLI does not guess ./data)")
    try:
        require_database(settings.database_url)
    except Failed as exc:
        raise CheckFailed(str(exc)) from None
    engine = make_engine(settings.database_url)
    try:
        current, head = migrate.revisions(engine)
    except SQLAlchemyError as exc:
        raise CheckFailed(one_line(exc)) from None
    finally:
        engine.dispose()
    if current != head:
        raise CheckFailed(f"schema at {current or 'no revision'}, code at {head}: run `jackdaw db upgrade`")
    return f"{engine.dialect.name} reachable, schema at head ({head})"


def ca_bundle(settings: Settings) -> str:
    if not settings.upstream_ca_bundle:
        return "unset: the system's trust store is used"
    path = Path(settings.upstream_ca_bundle)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckFailed(f"cannot read {path}: {exc.strerror}") from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CheckFailed(f"{path} holds no PEM certificate (expected -----BEGIN CERTIFICATE----- blocks)") from None
    subjects = ", ".join(c.subject.rfc4514_string() for c in certificates[:2])
    return f"{len(certificates)} certificate(s) in {path}: {subjects}"


def upstream_directory(settings: Settings) -> str:
    from jackdaw.upstream.account import fetch_directory

    trust = (f"UPSTREAM_CA_BUNDLE {settings.upstream_ca_bundle}" if settings.upstream_ca_bundle
             else "system trust (UPSTREAM_CA_BUNDLE unset)")
    try:
        doc = fetch_directory(settings, timeout=TIMEOUT)
    except requests.exceptions.SSLError:
        raise CheckFailed(f"{settings.le_directory}: TLS verification failed with {trust}") from None
    except requests.exceptions.ConnectionError:
        raise CheckFailed(f"{settings.le_directory}: cannot connect") from None
    except requests.exceptions.Timeout:
        raise CheckFailed(f"{settings.le_directory}: no answer in {TIMEOUT:g} s") from None
    except requests.exceptions.HTTPError as exc:
        raise CheckFailed(f"{settings.le_directory}: HTTP {exc.response.status_code}") from None
    except (requests.RequestException, ValueError) as exc:
        raise CheckFailed(f"{settings.le_directory}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                          ) from None
    except OSError as exc:  # requests could not load the bundle
        raise CheckFailed(f"{trust}: {exc}") from None
    terms = doc.get("meta", {}).get("termsOfService") if isinstance(doc.get("meta"), dict) else None
    return f"{settings.le_directory} answers over {trust}" + (f" (terms: {terms})" if terms else "")


def dns_provider(provider: DNSProvider) -> str:
    try:
        checked = provider.probe()
    except DNSProviderError as exc:
        raise CheckFailed(str(exc)) from None
    if checked is None:
        return "no read-only call to check its credentials with: `jackdaw dns-check NAME` writes and removes a test TXT"
    return checked


def resolver_and_authoritative(settings: Settings) -> tuple[str, str]:
    """The resolver finds RELAY_DOMAIN's zone; each of the zone's name servers answers on
    DNS_AUTHORITATIVE_PORT (what propagation checks and HTTP-01 lookups need)."""
    resolver = make_resolver(settings.dns_resolver)
    resolver.lifetime = TIMEOUT
    which = settings.dns_resolver or "the system resolver"
    try:
        zone = find_zone(settings.relay_domain, resolver)
    except DNSLookupError as exc:
        raise CheckFailed(f"{which}: {exc}") from None
    try:
        servers = sorted(r.target.to_text(omit_final_dot=True) for r in resolver.resolve(zone, dns.rdatatype.NS))
    except dns.exception.DNSException as exc:
        raise CheckFailed(f"{which}: no NS records for {zone}: {exc}") from None
    found = f"{which} answers: {settings.relay_domain} is in zone {zone} ({len(servers)} name server(s))"
    port = settings.dns_authoritative_port
    dead: list[str] = []
    for server in servers:
        try:
            addresses = resolve_addresses(server, resolver)
        except DNSLookupError:
            dead.append(f"{server} (no address)")
            continue
        if not any(_answers(address, port, zone) for address in addresses):
            dead.append(f"{server} ({', '.join(addresses)} port {port})")
    if dead:
        raise _Partial(found, f"no answer from {', '.join(dead)}")
    return found, f"all {len(servers)} of {zone} answer on port {port}"


class _Partial(CheckFailed):
    """The resolver check passed, the authoritative one did not."""

    def __init__(self, found: str, reason: str) -> None:
        super().__init__(reason)
        self.found = found


def _answers(address: str, port: int, zone: str) -> bool:
    try:
        dns.query.udp(dns.message.make_query(zone, dns.rdatatype.SOA), address, port=port, timeout=TIMEOUT / 2)
    except (dns.exception.DNSException, OSError):
        return False
    return True
