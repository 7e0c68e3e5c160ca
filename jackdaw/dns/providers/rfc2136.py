"""RFC 2136 dynamic updates signed with TSIG (BIND, Knot, PowerDNS): lego's ``rfc2136``."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.tsig
import dns.tsigkeyring
import dns.update

from jackdaw import envparse
from jackdaw.dns.base import ConfigError, DNSProvider, DNSProviderError
from jackdaw.dns.resolver import DNSLookupError, host_to_ip, parse_hostport

ALGORITHMS: dict[str, dns.name.Name] = {
    "hmac-md5": dns.tsig.HMAC_MD5,
    "hmac-md5.sig-alg.reg.int": dns.tsig.HMAC_MD5,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
}

TSIG_HINTS: dict[type[dns.tsig.PeerError], str] = {
    dns.tsig.PeerBadKey: "BADKEY: check RFC2136_TSIG_KEY and RFC2136_TSIG_ALGORITHM",
    dns.tsig.PeerBadSignature: "BADSIG: check RFC2136_TSIG_SECRET",
    dns.tsig.PeerBadTime: "BADTIME: check this host's clock",
}


def _parse_algorithm(text: str) -> dns.name.Name:
    algorithm = ALGORITHMS.get(text.strip().lower().rstrip("."))
    if algorithm is None:
        known = ", ".join(sorted(ALGORITHMS))
        raise ConfigError(f"RFC2136_TSIG_ALGORITHM: unknown {text!r} (known: {known})")
    return algorithm


@dataclass(frozen=True)
class RFC2136Config:
    host: str
    port: int
    key_name: dns.name.Name
    secret: str = field(repr=False)  # the TSIG secret: never in a repr, hence never in a log
    algorithm: dns.name.Name
    ttl: int
    timeout: float

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RFC2136Config:
        try:
            host, port = parse_hostport(envparse.required(env, "RFC2136_NAMESERVER", "DNS_PROVIDER=rfc2136"), 53)
        except ValueError as e:
            raise ConfigError(f"RFC2136_NAMESERVER: {e}") from e
        try:
            key_name = dns.name.from_text(envparse.required(env, "RFC2136_TSIG_KEY", "DNS_PROVIDER=rfc2136"))
        except dns.exception.DNSException as e:
            raise ConfigError(f"RFC2136_TSIG_KEY: not a valid key name: {e}") from e
        secret = envparse.required(env, "RFC2136_TSIG_SECRET", "DNS_PROVIDER=rfc2136")
        try:
            base64.b64decode(secret, validate=True)
        except binascii.Error:
            raise ConfigError("RFC2136_TSIG_SECRET: not valid base64") from None
        ttl = envparse.number(env, "RFC2136_TTL", 60.0, positive=True)
        if ttl != int(ttl):
            raise ConfigError(f"RFC2136_TTL: must be whole seconds, got {ttl!r}")
        return cls(
            host=host,
            port=port,
            key_name=key_name,
            secret=secret,
            algorithm=_parse_algorithm(env.get("RFC2136_TSIG_ALGORITHM", "") or "hmac-sha256"),
            ttl=int(ttl),
            timeout=envparse.number(env, "RFC2136_DNS_TIMEOUT", 10.0, positive=True),
        )


class RFC2136Provider(DNSProvider):
    """Adds and removes single TXT values; other values at the same name are left alone."""

    name = "rfc2136"
    env_keys = (
        "RFC2136_DNS_TIMEOUT",
        "RFC2136_NAMESERVER",
        "RFC2136_TSIG_ALGORITHM",
        "RFC2136_TSIG_KEY",
        "RFC2136_TSIG_SECRET",
        "RFC2136_TTL",
    )

    def __init__(self, config: RFC2136Config) -> None:
        self.config = config

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RFC2136Provider:
        return cls(RFC2136Config.from_env(env))

    def present(self, zone: str, fqdn: str, value: str) -> None:
        self.present_many(zone, [(fqdn, value)])

    def cleanup(self, zone: str, fqdn: str, value: str) -> None:
        self.cleanup_many(zone, [(fqdn, value)])

    def present_many(self, zone: str, records: Sequence[tuple[str, str]]) -> None:
        """One UPDATE adds them all (RFC 2136 applies an update atomically)."""
        update = self._update(zone)
        for fqdn, value in records:
            update.add(dns.name.from_text(fqdn), self.config.ttl, _txt(value))
        self._send(update, f"add TXT {_what(records)}")

    def cleanup_many(self, zone: str, records: Sequence[tuple[str, str]]) -> None:
        update = self._update(zone)
        for fqdn, value in records:
            update.delete(dns.name.from_text(fqdn), _txt(value))  # this rdata only
        self._send(update, f"delete TXT {_what(records)}")

    def probe(self) -> str:
        """A TSIG-signed SOA query to the name server: it answers, and knows the key (a wrong
        key, secret or algorithm comes back as BADKEY / BADSIG); nothing is changed."""
        query = dns.message.make_query(".", dns.rdatatype.SOA)
        query.use_tsig(self._keyring(), keyname=self.config.key_name, algorithm=self.config.algorithm)
        # REFUSED is an answer too (no zone "." here): the TSIG on it was verified all the same
        self._send(query, "signed SOA query", answers=(dns.rcode.NOERROR, dns.rcode.REFUSED, dns.rcode.NXDOMAIN))
        return f"{self.config.host}:{self.config.port} answers and accepts TSIG key {self.config.key_name}"

    def _keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return dns.tsigkeyring.from_text({self.config.key_name.to_text(): (self.config.algorithm, self.config.secret)})

    def _update(self, zone: str) -> dns.update.UpdateMessage:
        return dns.update.UpdateMessage(
            dns.name.from_text(zone),
            keyring=self._keyring(),
            keyname=self.config.key_name,
            keyalgorithm=self.config.algorithm,
        )

    def _send(self, update: dns.message.Message, what: str,
              answers: tuple[dns.rcode.Rcode, ...] = (dns.rcode.NOERROR,)) -> None:
        where = f"{self.config.host}:{self.config.port}"
        try:
            address = host_to_ip(self.config.host, self.config.port)
            response = dns.query.tcp(update, address, port=self.config.port, timeout=self.config.timeout)
        except dns.tsig.PeerError as e:  # the server rejected our TSIG: the usual misconfig
            hint = TSIG_HINTS.get(type(e), "check the RFC2136_TSIG_* settings")
            raise DNSProviderError(f"rfc2136 {what} via {where}: {e} ({hint})") from e
        except (dns.exception.DNSException, DNSLookupError, OSError) as e:
            raise DNSProviderError(f"rfc2136 {what} via {where}: {type(e).__name__}: {e}") from e
        rcode = response.rcode()
        if rcode not in answers:
            raise DNSProviderError(f"rfc2136 {what} via {where}: server answered {dns.rcode.to_text(rcode)}")


def _what(records: Sequence[tuple[str, str]]) -> str:
    names = sorted({fqdn for fqdn, _ in records})
    return names[0] if len(names) == 1 else f"{names[0]} and {len(records) - 1} more"


def _txt(value: str) -> dns.rdtypes.ANY.TXT.TXT:
    # built as rdata, not text, so no quoting/escaping of the value can go wrong
    return dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [value.encode()])
