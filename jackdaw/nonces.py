"""Replay nonces in the database, shared by every worker and instance (RFC 8555 §6.5).

Both operations run on the request's own session: on SQLite a second connection inside a
request would wait on the write lock the request already holds.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import Engine, delete, insert
from sqlalchemy.orm import Session

from jackdaw.db import rowcount
from jackdaw.models import Nonce, utcnow

NONCE_LIFETIME = timedelta(minutes=30)


def issue(session: Session) -> str:
    value = secrets.token_urlsafe(16)
    session.execute(insert(Nonce).values(value=value, expires=utcnow() + NONCE_LIFETIME))
    return value


def redeem(session: Session, value: str) -> bool:
    """True once per issued, unexpired nonce: the DELETE's row count decides, atomically."""
    return rowcount(session.execute(delete(Nonce).where(Nonce.value == value, Nonce.expires > utcnow()))) == 1


def sweep(engine: Engine) -> int:
    with engine.begin() as conn:
        return conn.execute(delete(Nonce).where(Nonce.expires <= utcnow())).rowcount
