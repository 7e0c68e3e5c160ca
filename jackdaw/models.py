"""SQLAlchemy models (rows only; rendering to RFC JSON lives in wfe/render.py).

The schema itself comes from alembic (migrations/); tests check the two agree.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false
from sqlalchemy.types import TypeDecorator

from jackdaw.protocol.constants import Status


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


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    thumbprint: Mapped[str] = mapped_column(String(64), unique=True)
    jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    contact: Mapped[list[str]] = mapped_column(JSON, default=list)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    expires: Mapped[datetime] = mapped_column(UTCDateTime)
    #: lower-cased dns names, in the order the client sent them
    identifiers: Mapped[list[str]] = mapped_column(JSON)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    csr: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # leg 2 state, stored as soon as known so an interrupted job resumes instead of restarting
    upstream_order_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    upstream_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    upstream_error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    account: Mapped[Account] = relationship()
    authzs: Mapped[list[Authz]] = relationship(back_populates="order", order_by="Authz.position")

    def fail(self, error: dict[str, Any]) -> None:
        """An unfinished order becomes invalid with `error` (a problem document); final ones stay."""
        if self.status in (Status.VALID, Status.INVALID):
            return
        self.status = Status.INVALID
        self.error = error
        self.updated = utcnow()
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

    authz: Mapped[Authz] = relationship(back_populates="challenges")


class Certificate(Base):
    __tablename__ = "certificates"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), unique=True)
    serial: Mapped[str] = mapped_column(String(64), index=True)
    chain_pem: Mapped[str] = mapped_column(Text)
    not_after: Mapped[datetime] = mapped_column(UTCDateTime)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revocation_reason: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: set once the upstream CA accepted the revocation (a job forwards it)
    upstream_revoked: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    order: Mapped[Order] = relationship(back_populates="certificate")


class DnsRecord(Base):
    """A TXT value Jackdaw wrote upstream-side; the row exists until the value is removed."""

    __tablename__ = "dns_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: the subject of the job that wrote it: an order id, or the relay certificate's job subject
    #: (jackdaw.relaycert), hence no foreign key to orders
    order_id: Mapped[str] = mapped_column(String(32), index=True)
    zone: Mapped[str] = mapped_column(String(255))
    fqdn: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Job(Base):
    """Durable work: one row per (kind, subject) while work is wanted."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_kind_subject", "kind", "subject_id", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    run_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: bumped by every enqueue; a runner deletes the row only if nobody asked again meanwhile
    generation: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
