"""Many whole issuances at once through the `acme` library, as a fleet of hosts renewing from
the same cron minute would run them: each its own account, key and name, HTTP-01 answered from
one shared webroot. Used by tests/e2e/test_instances.py and bench/herd.py.

A client retries what a real client would retry or re-run (a 5xx, a connection error, a
badNonce), and records every 5xx it saw with its time, so a test can tell when they stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import requests
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages

from tests.clients import acme_account, http01, new_csr

T = TypeVar("T")

#: seconds between polls, as certbot (the `acme` library) polls
POLL = 1.0


@dataclass
class Fleet:
    """What all clients of one herd saw."""

    #: (time.monotonic() the request started, status, URL) of every 5xx answer
    server_errors: list[tuple[float, int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, client: acme_client.ClientV2) -> None:
        def record(resp: requests.Response, *args: object, **kwargs: object) -> None:
            if resp.status_code >= 500:
                with self.lock:
                    self.server_errors.append((time.monotonic() - resp.elapsed.total_seconds(), resp.status_code,
                                               resp.url))

        client.net.session.hooks["response"].append(record)


@dataclass
class Result:
    name: str
    seconds: float
    chain_pem: str | None = None
    error: str | None = None


def _retrying(call: Callable[[], T], deadline: float) -> T:
    while True:
        try:
            return call()
        except (requests.RequestException, acme_errors.ClientError, messages.Error) as exc:
            transient = not isinstance(exc, messages.Error) or exc.code in ("serverInternal", "badNonce")
            if not transient or time.monotonic() > deadline:
                raise
            time.sleep(POLL)


def _text(client: acme_client.ClientV2, url: str) -> str:
    return str(client._post_as_get(url).text)


def issue(directory_url: str, name: str, webroot: Path, fleet: Fleet, timeout: float = 90.0,
          verify: bool | str = True) -> Result:
    """One whole issuance: account, order, HTTP-01, finalize, download."""
    started = time.monotonic()
    deadline = started + timeout
    try:
        client = _retrying(lambda: acme_account(directory_url, verify=verify), deadline)
        fleet.watch(client)
        _, csr_pem = new_csr([name])
        order = _retrying(lambda: client.new_order(csr_pem), deadline)
        challb = http01(order.authorizations[0])
        target = webroot / ".well-known" / "acme-challenge" / challb.chall.encode("token")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(challb.chall.key_authorization(client.net.key))
        _retrying(lambda: client.answer_challenge(challb, challb.response(client.net.key)), deadline)
        finalized = False
        while time.monotonic() < deadline:
            body = messages.Order.from_json(_retrying(lambda: client._post_as_get(order.uri), deadline).json())
            if body.status == messages.STATUS_VALID and body.certificate:
                chain = _retrying(partial(_text, client, body.certificate), deadline)
                return Result(name, time.monotonic() - started, chain_pem=chain)
            if body.status == messages.STATUS_INVALID:
                return Result(name, time.monotonic() - started, error=f"order invalid: {body.error}")
            if body.status == messages.STATUS_READY and not finalized:
                finalized = True
                try:
                    _retrying(lambda: client.begin_finalization(order), deadline)
                except messages.Error as exc:  # a retried finalize whose first try got through
                    if exc.code != "orderNotReady":
                        raise
            time.sleep(POLL)
        return Result(name, time.monotonic() - started, error=f"not valid after {timeout:.0f} s")
    except Exception as exc:  # the herd goes on; the caller counts failures
        return Result(name, time.monotonic() - started, error=f"{type(exc).__name__}: {exc}")


def herd(directory_url: str, names: list[str], webroot: Path, fleet: Fleet | None = None, timeout: float = 90.0,
         verify: bool | str = True) -> tuple[list[Result], float]:
    """All ``names`` at once, one thread each; (results, wall seconds)."""
    fleet = fleet or Fleet()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        results = list(pool.map(lambda n: issue(directory_url, n, webroot, fleet, timeout, verify), names))
    return results, time.monotonic() - started
