"""Replay nonces in the database, shared by every worker and instance (RFC 8555 §6.5).

Issuing is batched: each process inserts a few hundred nonce rows in one statement and hands
them out from memory, so a response costs no write of its own. Redeeming is one DELETE on the
request's own session whose row count decides; it commits with the request (or, if the request
fails, again on its own), so a nonce is spent exactly once whatever happens.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, bindparam, delete, insert
from sqlalchemy.orm import Session

from jackdaw.models import Nonce, utcnow

NONCE_LIFETIME = timedelta(minutes=30)
#: a batch is thrown away once this old, so every nonce handed out has most of its life left
BATCH_MAX_AGE = timedelta(minutes=5)
BATCH_SIZE = 256


class NoncePool:
    def __init__(self, engine: Engine, batch_size: int = BATCH_SIZE) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._pool: deque[str] = deque()
        self._filled = datetime.min.replace(tzinfo=utcnow().tzinfo)

    def take(self) -> str:
        """Call outside any open transaction of this thread (SQLite: one writer at a time)."""
        with self._lock:
            if not self._pool or utcnow() - self._filled > BATCH_MAX_AGE:
                self._refill()
            return self._pool.popleft()

    def _refill(self) -> None:
        now = utcnow()
        values = [secrets.token_urlsafe(16) for _ in range(self.batch_size)]
        with self.engine.begin() as conn:
            conn.execute(insert(Nonce), [{"value": v, "expires": now + NONCE_LIFETIME} for v in values])
        self._pool = deque(values)
        self._filled = now


def redeem(on: Session | Connection, value: str) -> bool:
    """True once per issued, unexpired nonce: the DELETE's row count decides, atomically."""
    # on the session's connection (same transaction), but as Core: the ORM's bulk-delete
    # machinery costs more than the statement itself on this hottest of paths
    conn = on if isinstance(on, Connection) else on.connection()
    return conn.execute(_REDEEM, {"value": value, "now": utcnow()}).rowcount == 1


#: built once: building it per request cost more than running it
_REDEEM = delete(Nonce).where(Nonce.value == bindparam("value"), Nonce.expires > bindparam("now"))

