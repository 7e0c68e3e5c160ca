"""The bounded wait of challenge and finalize responses (jackdaw.wfe.settle) costs nothing under load."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flask import Flask

from jackdaw.runtime import Runtime
from jackdaw.wfe import settle

WAIT = 0.4


@pytest.fixture
def app_env() -> dict[str, str]:
    return {"RESPONSE_WAIT": str(WAIT), "JACKDAW_THREADS": "3"}


@pytest.fixture
def running(app: Flask) -> Iterator[Runtime]:
    rt: Runtime = app.extensions["jackdaw"]
    rt.queue.start()
    try:
        with app.test_request_context():
            yield rt
    finally:
        rt.queue.stop()


def _timed(settled: object) -> tuple[bool, float]:
    started = time.monotonic()
    result = settle.wait_until(settled)  # type: ignore[arg-type]
    return result, time.monotonic() - started


def test_waits_at_most_response_wait_while_threads_are_free(running: Runtime) -> None:
    assert settle.IN_FLIGHT.count == 0
    settle.IN_FLIGHT.enter()  # this request
    try:
        outcome, took = _timed(lambda: False)
        assert outcome is False and WAIT <= took < WAIT + 0.3
        looks = iter([False, False, True])
        outcome, took = _timed(lambda: next(looks))
        assert outcome is True and took < WAIT
    finally:
        settle.IN_FLIGHT.leave()


def test_no_wait_when_every_request_thread_is_busy(running: Runtime) -> None:
    for _ in range(running.settings.request_threads):
        settle.IN_FLIGHT.enter()
    try:
        outcome, took = _timed(lambda: False)
        assert outcome is False and took < 0.05
    finally:
        for _ in range(running.settings.request_threads):
            settle.IN_FLIGHT.leave()


def test_no_wait_without_job_threads(app: Flask) -> None:
    with app.test_request_context():
        outcome, took = _timed(lambda: False)
    assert outcome is False and took < 0.05
