"""A bounded wait for work already under way, so that a client's first look sees the outcome.

Clients that poll on an interval of their own (acme-tiny every 2 s, uacme and Caddy on a
back-off) lose a whole interval when their first look at an authorization or an order comes a
few milliseconds too early, though the relay's HTTP-01 check takes milliseconds and leg 2 after
finalize a few hundred. So the challenge response waits, up to ``RESPONSE_WAIT`` seconds, for
the check it started, and a poll of a ``processing`` order for leg 2 to end: the client's look
then shows ``valid`` (or ``invalid``). Not the finalize response: clients that sleep before
their first poll (certbot, 1 s) would lose the wait on top of their sleep.

Only while this process has request threads free: a wait ends as soon as every request thread
is busy (JACKDAW_THREADS), so under load nothing waits and throughput is what it was. The
request thread only reads the outcome from the database; the job threads do the work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from flask import Flask, g

from jackdaw.runtime import runtime

#: between two looks at the database when no run of this process ends (a run elsewhere)
LOOK_EVERY = 0.1


class _InFlight:
    """Requests this process is answering now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def enter(self) -> None:
        with self._lock:
            self.count += 1

    def leave(self) -> None:
        with self._lock:
            self.count -= 1


IN_FLIGHT = _InFlight()


def _request_starts() -> None:
    IN_FLIGHT.enter()
    g.jackdaw_counted = True


def _request_ends(_exc: BaseException | None) -> None:
    if g.pop("jackdaw_counted", False):  # a context whose before_request never ran is not counted
        IN_FLIGHT.leave()


def waits() -> bool:
    """Whether a request here would wait now (job threads run, RESPONSE_WAIT > 0, a thread free)."""
    rt = runtime()
    return rt.queue.running and rt.settings.response_wait > 0 and IN_FLIGHT.count < rt.settings.request_threads


def wait_until(settled: Callable[[], bool]) -> bool:
    """Wait for ``settled()`` (a read of the database), at most RESPONSE_WAIT seconds and only
    while ``waits()``; True if it settled. Call after the request's commit: the job it queued
    starts then."""
    if not waits():  # under load, or no job thread here: not even one look at the database
        return False
    rt = runtime()
    deadline = time.monotonic() + rt.settings.response_wait
    while not settled():
        left = deadline - time.monotonic()
        if left <= 0 or not waits():  # no job thread here to do the work, or every thread is busy
            return False
        rt.queue.wait_for_a_run(min(LOOK_EVERY, left))
    return True


def register(app: Flask) -> None:
    app.before_request(_request_starts)
    app.teardown_request(_request_ends)
