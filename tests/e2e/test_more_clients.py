"""More unmodified clients, Debian's packages, through Jackdaw: acme-tiny, uacme, dehydrated, Caddy.

Each answers HTTP-01 its own way (a webroot the test serves, uacme's hook script, Caddy's own
listener) on the port the relay's validator fetches from. Their polling is their own (acme-tiny
every 2 s, uacme and Caddy on a back-off): the challenge and finalize responses wait for the
relay's work under way (jackdaw.wfe.settle), so each first look already sees the outcome.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from acme import messages
from cryptography import x509

from tests.clients import (
    Issued,
    Webroot,
    acme_account,
    acme_tiny,
    caddy,
    check_certificate,
    dehydrated,
    http01,
    new_csr,
    uacme,
)
from tests.e2e.conftest import Bed


def test_first_looks_see_the_outcome(bed: Bed, tmp_path: Path) -> None:
    """The challenge response shows the HTTP-01 check's outcome; the finalize response comes at
    once, and the first poll after it, made at once, shows the certificate."""
    client = acme_account(bed.relay.directory_url)
    name = bed.name("settled")
    _, csr_pem = new_csr([name])
    order = client.new_order(csr_pem)
    challb = http01(order.authorizations[0])
    with Webroot(tmp_path / "www", bed.challenge_port) as www:
        target = www.root / ".well-known" / "acme-challenge" / challb.chall.encode("token")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(challb.chall.key_authorization(client.net.key))
        answered = client.answer_challenge(challb, challb.response(client.net.key))
    assert answered.body.status == messages.STATUS_VALID
    ready = messages.Order.from_json(client._post_as_get(order.uri).json())
    assert ready.status == messages.STATUS_READY
    started = time.monotonic()
    resp = client._post(ready.finalize, messages.CertificateRequest(csr=x509.load_pem_x509_csr(csr_pem)))
    finalized = messages.Order.from_json(resp.json())
    assert time.monotonic() - started < 0.5 and finalized.status == messages.STATUS_PROCESSING
    assert resp.headers["Retry-After"] == "0"  # come back at once: that poll waits
    polled = messages.Order.from_json(client._post_as_get(order.uri).json())
    assert polled.status == messages.STATUS_VALID and polled.certificate, polled


@pytest.mark.parametrize("client", ["acme-tiny", "uacme", "dehydrated"])
def test_webroot_clients(bed: Bed, tmp_path: Path, client: str) -> None:
    names = [bed.name(client), bed.name(f"www-{client}")]
    with Webroot(tmp_path / "www", bed.challenge_port) as www:
        issued: Issued
        if client == "acme-tiny":
            issued = acme_tiny(tmp_path / client, bed.relay.directory_url, names, webroot=www.root)
        elif client == "uacme":
            issued = uacme(tmp_path / client, bed.relay.directory_url, names, webroot=www.root)
        else:
            issued = dehydrated(tmp_path / client, bed.relay.directory_url, names, webroot=www.root)
    check_certificate(issued, names, bed.pebble.roots_pem())


def test_caddy(bed: Bed, tmp_path: Path) -> None:
    names = [bed.name("caddy")]
    issued = caddy(tmp_path / "caddy", bed.relay.directory_url, names, http_port=bed.challenge_port)
    check_certificate(issued, names, bed.pebble.roots_pem())
    assert re.search(r"certificate obtained successfully", (tmp_path / "caddy" / "caddy.log").read_text())
