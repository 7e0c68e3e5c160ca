"""`jackdaw dns-persist show|check NAME`: the dns-persist-01 record to publish once for a name,
and whether every authoritative name server serves it (jackdaw.dns.persist)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from jackdaw.dns import persist
from jackdaw.dns.resolver import make_resolver
from jackdaw.settings import Settings
from jackdaw.upstream.account import UpstreamAccount


class PersistError(Exception):
    """The record cannot be shown (the CA is unreachable, or offers no CAA identity)."""


@dataclass(frozen=True)
class Record:
    name: str
    value: str

    def zone_line(self) -> str:
        return f'{self.name}. 3600 IN TXT "{self.value}"'


def record_for(settings: Settings, sessions: sessionmaker[Session], name: str, wildcard: bool = False) -> Record:
    """The record that authorizes the relay's upstream account (registered now if need be) at
    the upstream CA (its first CAA issuer domain name) for ``name``."""
    upstream = UpstreamAccount(settings, sessions)
    meta = upstream.refresh_meta()
    if meta is None:
        raise PersistError(f"the upstream directory {settings.le_directory} could not be read")
    if not meta.caa_identities:
        raise PersistError(f"the upstream directory {settings.le_directory} names no CAA identity "
                           "(meta.caaIdentities), so no issuer domain for the record")
    account = upstream.client().net.account
    assert account is not None
    return Record(persist.record_name(name), persist.record_value(meta.caa_identities[0], str(account.uri),
                                                                  wildcard or name.startswith("*.")))


def check(settings: Settings, record: Record, name: str) -> dict[str, bool | None]:
    issue = persist.parse(record.value)
    assert issue is not None and issue.account_uri is not None
    return persist.served(name, make_resolver(settings.dns_resolver), port=settings.dns_authoritative_port,
                          issuers=[issue.issuer], account_uri=issue.account_uri, wildcard=issue.policy == "wildcard")
