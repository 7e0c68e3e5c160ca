"""The test bed itself: Pebble starts against our BIND and serves HTTPS trusted via ca.pem."""

from __future__ import annotations

import pytest
import requests
from cryptography import x509

from tests.testbed import Bind, Pebble


def test_pebble_serves_directory_and_roots(bind: Bind, tmp_path_factory: pytest.TempPathFactory) -> None:
    with Pebble(tmp_path_factory.mktemp("pebble"), bind.port) as pebble:
        directory = requests.get(pebble.directory_url, verify=str(pebble.ca_pem), timeout=5)
        directory.raise_for_status()
        assert {"newAccount", "newNonce", "newOrder"} <= set(directory.json())
        assert directory.json()["newNonce"].startswith("https://127.0.0.1:")

        root = x509.load_pem_x509_certificate(pebble.roots_pem().encode())
        intermediate = x509.load_pem_x509_certificate(pebble.intermediates_pem().encode())
        assert intermediate.issuer == root.subject

    with pytest.raises(requests.ConnectionError):
        requests.get(pebble.directory_url, verify=str(pebble.ca_pem), timeout=2)
