"""Everything one app instance wires together (built once by create_app)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jackdaw.budget import Budget
from jackdaw.health import Readiness
from jackdaw.jobs import JobQueue
from jackdaw.nonces import NoncePool
from jackdaw.outage import Outage
from jackdaw.settings import Settings
from jackdaw.upstream.account import UpstreamAccount

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    queue: JobQueue
    upstream: UpstreamAccount
    nonces: NoncePool
    budget: Budget
    #: the database away: ACME answers 503 (jackdaw.outage; the job threads tell it too)
    outage: Outage
    #: /readyz's checks (keeps what it may cache: schema at head, upstream reachability)
    readiness: Readiness = field(init=False)

    #: the engine for transactions that only look (SQLite: a deferred BEGIN, no write lock);
    #: made once, as making it per request cost as much as a query
    read_engine: Engine = field(init=False)

    def __post_init__(self) -> None:
        self.readiness = Readiness(self.settings, self.engine, self.upstream, self.outage)
        self.read_engine = self.engine.execution_options(read_only=True)

    def start(self) -> None:
        """Start job threads; call in each gunicorn worker (threads do not survive fork)."""
        self.queue.start()
        log.info("job threads started (%d)", self.queue.threads)

    def stop(self) -> None:
        self.queue.stop()
        self.engine.dispose()


def runtime() -> Runtime:
    rt: Runtime = current_app.extensions["jackdaw"]
    return rt
