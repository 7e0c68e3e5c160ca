"""What goes wrong is reported as ACME problems and leaves nothing behind."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from acme import messages

from tests.clients import BIN, Webroot, _client_env, acme_account, http01, new_csr
from tests.e2e.conftest import Bed


def _poll_authz(client, authz, until=lambda a: a.body.status != messages.STATUS_PENDING, timeout=20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        authz, _ = client.poll(authz)
        if until(authz):
            return authz
        time.sleep(0.2)
    raise AssertionError(f"authorization still {authz.body.status}")


def test_wrong_http01_response_invalidates_the_order(bed: Bed, tmp_path: Path) -> None:
    client = acme_account(bed.relay.directory_url)
    name = bed.name("wrong-response")
    _, csr_pem = new_csr([name])
    order = client.new_order(csr_pem)
    authz = order.authorizations[0]
    challb = http01(authz)
    with Webroot(tmp_path / "www", bed.challenge_port) as www:
        target = www.root / ".well-known" / "acme-challenge" / challb.chall.encode("token")
        target.parent.mkdir(parents=True)
        target.write_text("not-the-key-authorization")
        client.answer_challenge(challb, challb.response(client.net.key))
        authz = _poll_authz(client, authz)
    assert authz.body.status == messages.STATUS_INVALID
    chall = http01(authz)
    assert chall.error is not None and chall.error.typ == "urn:ietf:params:acme:error:incorrectResponse"
    body = messages.Order.from_json(client._post_as_get(order.uri).json())
    assert body.status == messages.STATUS_INVALID
    assert body.error is not None and body.error.code == "incorrectResponse"
    assert bed.bind.txt(f"_acme-challenge.{name}") == []


def test_nothing_listening_is_a_connection_problem(bed: Bed) -> None:
    client = acme_account(bed.relay.directory_url)
    _, csr_pem = new_csr([bed.name("nobody-home")])
    order = client.new_order(csr_pem)
    authz = order.authorizations[0]
    challb = http01(authz)
    client.answer_challenge(challb, challb.response(client.net.key))
    authz = _poll_authz(client, authz)
    error = http01(authz).error
    assert error is not None and error.code == "connection"


def test_name_outside_allowed_domains_is_rejected(bed: Bed) -> None:
    client = acme_account(bed.relay.directory_url)
    _, csr_pem = new_csr(["host.elsewhere.test"])
    with pytest.raises(messages.Error) as raised:
        client.new_order(csr_pem)
    assert raised.value.code == "rejectedIdentifier"
    assert "ALLOWED_DOMAINS" in (raised.value.detail or "")


def test_certbot_shows_rejected_identifier(bed: Bed, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(BIN / "certbot"), "certonly", "--non-interactive", "--agree-tos", "-m", "a@example.test",
         "--server", bed.relay.directory_url, "--config-dir", str(tmp_path / "c"), "--work-dir", str(tmp_path / "w"),
         "--logs-dir", str(tmp_path / "l"), "--standalone", "--http-01-address", "127.0.0.1",
         "--http-01-port", str(bed.challenge_port), "-d", "host.elsewhere.test"],
        env=_client_env(), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "rejectedIdentifier" in proc.stdout + proc.stderr or "ALLOWED_DOMAINS" in proc.stdout + proc.stderr
