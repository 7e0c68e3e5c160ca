"""SQLAlchemy models (rows only; rendering to RFC JSON lives in wfe/render.py).

The schema itself comes from alembic (migrations/); tests check the two agree.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    # URL-safe, unguessable: ids appear in URLs that other accounts must not be able to guess
    return secrets.token_urlsafe(16)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (naive storage) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class Nonce(Base):
    __tablename__ = "nonces"
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class EabKey(Base):
    """An external account binding key (RFC 8555 §7.3.4) and the policy it carries for every
    account bound with it (one key may bind several accounts: a team's hosts)."""

    __tablename__ = "eab_keys"
    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: the HMAC key, base64url; protected like the rest of the database
    hmac_key: Mapped[str] = mapped_column(String(128))
    #: name patterns: "host.example.com" (that name), "*.team.example.com" (names under it)
    allow: Mapped[list[str]] = mapped_column(JSON)
    wildcards: Mapped[bool] = mapped_column(Boolean, default=False)
    #: CIDRs the requests must come from; [] = anywhere
    sources: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: the requester must be among the name's A/AAAA addresses (checked at validation)
    requester_in_dns: Mapped[bool] = mapped_column(Boolean, default=False)
    orders_per_hour: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: certificate profiles its accounts may ask for; [] = any the relay offers
    profiles: Mapped[list[str]] = mapped_column(JSON, default=list)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:  # never the HMAC key
        return f"EabKey({self.name!r}, kid={self.kid!r})"


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    thumbprint: Mapped[str] = mapped_column(String(64), unique=True)
    jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    contact: Mapped[list[str]] = mapped_column(JSON, default=list)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: the external account binding this account was created with, if any
    eab_kid: Mapped[str | None] = mapped_column(ForeignKey("eab_keys.kid"), nullable=True, index=True)
    #: when the operator blocked it (`jackdaw account block`); None = not blocked. Beside the
    #: RFC 8555 status, whose deactivated and revoked are final: a block can be lifted
    blocked: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    expires: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # retention
    #: lower-cased dns names, in the order the client sent them
    identifiers: Mapped[list[str]] = mapped_column(JSON)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    csr: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # leg 2's progress is an UpstreamOrder row owned by (JobKind.ORDER, order id)
    #: the client's address at newOrder (EAB keys that require it among the name's addresses)
    requester: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: "reserved" while the order holds upstream budget (jackdaw.ra.budget), "settled" after
    budget: Mapped[str | None] = mapped_column(String(16), nullable=True, index=True)
    #: the certificate profile asked for (the upstream CA's meta.profiles), sent upstream
    profile: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: the ARI certificate id (RFC 9773) of the certificate this order replaces
    replaces: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: its exact set of names was issued before (an IssuedSet) when it took its budget: as the CA
    #: counts a renewal, it holds a certs-per-set token only (jackdaw.budget)
    renewal: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    account: Mapped[Account] = relationship()
    authzs: Mapped[list[Authz]] = relationship(back_populates="order", order_by="Authz.position")

    certificate: Mapped[Certificate | None] = relationship(back_populates="order")


class Authz(Base):
    __tablename__ = "authzs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    #: the name proven by HTTP-01: for `*.example.com` this is `example.com` (RFC 8555 §7.1.4)
    identifier: Mapped[str] = mapped_column(String(255))
    wildcard: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(16), index=True)  # counted by status for /metrics
    expires: Mapped[datetime] = mapped_column(UTCDateTime)

    order: Mapped[Order] = relationship(back_populates="authzs")
    challenges: Mapped[list[Challenge]] = relationship(back_populates="authz", order_by="Challenge.type")


class Challenge(Base):
    __tablename__ = "challenges"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    authz_id: Mapped[str] = mapped_column(ForeignKey("authzs.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    validated: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    validation_records: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    #: HTTP-01 attempts made so far (CHALLENGE_RETRIES bounds them)
    tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    authz: Mapped[Authz] = relationship(back_populates="challenges")


class Certificate(Base):
    __tablename__ = "certificates"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), unique=True)
    serial: Mapped[str] = mapped_column(String(64), index=True)
    chain_pem: Mapped[str] = mapped_column(Text)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # retention
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revocation_reason: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: set once the upstream CA accepted the revocation (a job forwards it)
    upstream_revoked: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: RFC 9773 §4.1 certificate id (AKI keyIdentifier . serial, base64url): the client's
    #: certificate is the upstream CA's, so it is the upstream's id too
    ari_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    #: the order that replaces this certificate (ARI `replaces`)
    replaced_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: the upstream CA's suggested renewal window, as last fetched, and when to fetch again
    ari_start: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ari_end: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ari_explanation: Mapped[str | None] = mapped_column(Text, nullable=True)
    ari_refresh: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    order: Mapped[Order] = relationship(back_populates="certificate")


class DnsRecord(Base):
    """A TXT value leg 2 wants served, from the request until the value is removed again.

    Owners (order jobs, the relay certificate) only add rows ("wanted") and mark them
    "removing"; the zone's own job (upstream.dns01) is the only writer to the DNS provider:
    it writes what is wanted, checks what was written until every authoritative server serves
    it, and removes what is no longer wanted, a whole zone's values at a time.
    """

    __tablename__ = "dns_records"
    __table_args__ = (Index("ix_dns_records_zone_state", "zone", "state"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: the subject of the job that owns it: an order id, or the relay certificate's job subject
    #: (jackdaw.relaycert), hence no foreign key to orders
    order_id: Mapped[str] = mapped_column(String(32), index=True)
    #: the owner's job kind (jackdaw.jobs.JobKind), woken when its values are served or failed
    owner_kind: Mapped[str] = mapped_column(String(32), default="order", server_default="order")
    zone: Mapped[str] = mapped_column(String(255))
    fqdn: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    #: wanted -> written -> served, or failed; removing until the provider removed it
    state: Mapped[str] = mapped_column(String(16), default="wanted")
    #: the owner's run (job claim token) that asked for the value
    run: Mapped[str | None] = mapped_column(String(32), nullable=True)
    written: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    served: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: failed provider calls in a row (write or removal)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BudgetBucket(Base):
    """One token bucket of the upstream budget (jackdaw.ledger): a limit and what it counts."""

    __tablename__ = "budget_buckets"
    limit: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: the account, a registered domain, a digest of a set of names, a name, an EAB key id
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)
    label: Mapped[str | None] = mapped_column(String(255), nullable=True)


class IssuedSet(Base):
    """An exact set of names the upstream CA issued a certificate for through the relay's
    account (client orders and the relay's own), and when last: a later order for the same set
    is a renewal (jackdaw.budget), found by the set's key, whatever the number of certificates."""

    __tablename__ = "issued_sets"
    #: jackdaw.budget.set_key of the names
    set_key: Mapped[str] = mapped_column(String(48), primary_key=True)
    issued: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # retention


class UpstreamPause(Base):
    """A name the upstream CA paused for the relay's account (after too many failures in a row)
    until the operator unpauses it at the CA's link."""

    __tablename__ = "upstream_pauses"
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    unpause_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UpstreamAccount(Base):
    """The deployment's one account at an upstream CA, shared by every instance and worker."""

    __tablename__ = "upstream_accounts"
    directory_url: Mapped[str] = mapped_column(String(1000), primary_key=True)
    #: PKCS#8 PEM; encrypted with UPSTREAM_KEY_PASSPHRASE when ``key_encrypted``
    key_pem: Mapped[str] = mapped_column(Text)
    key_encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    #: None until registered
    account_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:  # never the key
        return f"UpstreamAccount({self.directory_url!r}, {self.account_url!r})"


class UpstreamDirectory(Base):
    """What the upstream CA's directory offered at the last good fetch (jackdaw.upstream.directory),
    per directory URL: served from the first request after any start, by every instance."""

    __tablename__ = "upstream_directories"
    directory_url: Mapped[str] = mapped_column(String(1000), primary_key=True)
    #: meta.profiles as the CA listed them: name -> description
    profiles: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    #: profiles the CA stopped listing: name -> {"description": ..., "since": ISO 8601}, kept
    #: offered for UPSTREAM_PROFILE_GRACE after "since"
    withdrawn: Mapped[dict[str, dict[str, str]]] = mapped_column(JSON, default=dict)
    caa_identities: Mapped[list[str]] = mapped_column(JSON, default=list)
    renewal_info: Mapped[str | None] = mapped_column(Text, nullable=True)
    eab_required: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the last good fetch (the meta's age); None while never fetched
    fetched: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: the last attempt, good or bad: the next one is due an interval later (for every instance)
    checked: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: why the last attempt failed; None when it succeeded
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class UpstreamOrder(Base):
    """Leg 2's progress for one owner (a client order, the relay's certificate): the one
    sequence in jackdaw.upstream.sequence reads and advances it, a step per job run."""

    __tablename__ = "upstream_orders"
    __table_args__ = (Index("ix_upstream_orders_owner", "owner_kind", "owner_id", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_kind: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[str] = mapped_column(String(64))
    names: Mapped[list[str]] = mapped_column(JSON)
    profile: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: the ARI certificate id (RFC 9773) of the upstream certificate this order replaces
    replaces: Mapped[str | None] = mapped_column(String(255), nullable=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    stage: Mapped[str] = mapped_column(String(16))
    #: the upstream order's status as last seen (RFC 8555 status string)
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: the upstream challenges being answered: [{"authz": url, "url": url}]
    challenges: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    stage_since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Job(Base):
    """Durable work: one row per (kind, subject) while work is wanted."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_kind_subject", "kind", "subject_id", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    #: an id, or a zone name for jackdaw.jobs.JobKind.DNS_ZONE
    subject_id: Mapped[str] = mapped_column(String(255))
    run_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: the token of the claim holding the lease; every write of a run is conditional on it
    owner: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: bumped by every enqueue; a runner deletes the row only if nobody asked again meanwhile
    generation: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(Base):
    """One event for one channel (jackdaw.notify): the unique (event, subject, period, channel)
    is the deduplication, so a condition seen by every sweep is told once per channel."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_key", "event", "subject", "period", "channel", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event: Mapped[str] = mapped_column(String(32))
    #: what it is about: a certificate id, a name, a budget bucket, the relay's domain
    subject: Mapped[str] = mapped_column(String(255))
    #: which occurrence: a day, a pause, "once"
    period: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    #: the document every channel sends (title, text, details), fixed when the event is raised
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    sent: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: why the last delivery failed; kept when the delivery was given up
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
