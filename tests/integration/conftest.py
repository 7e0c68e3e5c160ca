"""Shared fixtures for integration tests that need a real BIND."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.testbed import Bind

ZONES = {
    "example.test": [
        "a 60 IN A 127.0.0.1",
        "both 60 IN A 127.0.0.1",
        "both 60 IN AAAA ::1",
        "_acme-challenge.c 60 IN CNAME c.challenges.test.",
        "loop1 60 IN CNAME loop2",
        "loop2 60 IN CNAME loop1",
    ],
    "challenges.test": [],
}


@pytest.fixture(scope="module")
def bind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bind]:
    """One named per test module serving example.test and challenges.test."""
    with Bind(tmp_path_factory.mktemp("bind"), ZONES) as server:
        yield server
