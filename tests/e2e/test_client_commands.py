"""Everyday client commands beyond issuance: revoke, update_account, unregister, key roll-over.

Each is checked against what Jackdaw stored and, for revocation, against the upstream CA.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import josepy as jose
import pytest
import requests
from acme import client as acme_client
from acme import jws as acme_jws
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import create_engine, select
from sqlalchemy.engine import Engine

from jackdaw.models import Account, Certificate
from jackdaw.settings import Settings
from tests.clients import BIN, LEGO, _client_env, acme_account, certbot, lego
from tests.e2e.conftest import Bed


def _engine(bed: Bed) -> Engine:
    return create_engine(Settings.parse(bed.relay.env).database_url)


def _certbot(tmp_path: Path, bed: Bed, *args: str) -> str:
    argv = [str(BIN / "certbot"), *args, "--non-interactive", "--server", bed.relay.directory_url,
            "--config-dir", str(tmp_path / "config"), "--work-dir", str(tmp_path / "work"),
            "--logs-dir", str(tmp_path / "logs")]
    proc = subprocess.run(argv, env=_client_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def _certbot_account_url(tmp_path: Path) -> str:
    [regr] = (tmp_path / "config" / "accounts").rglob("regr.json")
    return str(json.loads(regr.read_text())["uri"])


def _stored_certificate(bed: Bed, pem: bytes) -> Certificate:
    serial = format(x509.load_pem_x509_certificate(pem).serial_number, "x")
    engine = _engine(bed)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(Certificate).where(Certificate.serial == serial)).one()
            return Certificate(**row._asdict())
    finally:
        engine.dispose()


def _upstream_revoked(bed: Bed, pem: bytes, timeout: float = 20.0) -> bool:
    """Pebble's management API tells whether the CA itself considers the certificate revoked."""
    serial = format(x509.load_pem_x509_certificate(pem).serial_number, "x")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = requests.get(f"{bed.pebble.management_url}/cert-status-by-serial/{serial}",
                            verify=str(bed.pebble.ca_pem), timeout=5)
        if resp.ok and resp.json().get("Status") == "Revoked":
            return True
        time.sleep(0.25)
    return False


def _account_row(bed: Bed, url: str) -> Account:
    engine = _engine(bed)
    try:
        with engine.connect() as conn:
            row = conn.execute(select(Account).where(Account.id == url.rsplit("/", 1)[-1])).one()
            return Account(**row._asdict())
    finally:
        engine.dispose()


def test_certbot_revoke_update_account_unregister(bed: Bed, tmp_path: Path) -> None:
    name = bed.name("certbot-life")
    issued = certbot(tmp_path, bed.relay.directory_url, [name], standalone_port=bed.challenge_port)
    account_url = _certbot_account_url(tmp_path)

    _certbot(tmp_path, bed, "update_account", "--email", "new-owner@example.test")
    assert _account_row(bed, account_url).contact == ["mailto:new-owner@example.test"]

    cert_path = tmp_path / "config" / "live" / name / "cert.pem"
    _certbot(tmp_path, bed, "revoke", "--cert-path", str(cert_path), "--reason", "superseded",
             "--no-delete-after-revoke")
    stored = _stored_certificate(bed, issued.chain_pem)
    assert stored.revoked is not None and stored.revocation_reason == 4
    assert _upstream_revoked(bed, issued.chain_pem), "revocation never reached the upstream CA"

    _certbot(tmp_path, bed, "unregister")
    assert _account_row(bed, account_url).status == "deactivated"


def test_lego_revoke(bed: Bed, tmp_path: Path) -> None:
    name = bed.name("lego-revoke")
    issued = lego(tmp_path, bed.relay.directory_url, [name], http_port=bed.challenge_port)
    proc = subprocess.run(
        [LEGO, "--server", bed.relay.directory_url, "--email", "admin@example.test", "--accept-tos",
         "--path", str(tmp_path), "--domains", name, "revoke"],
        env=_client_env(), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _stored_certificate(bed, issued.chain_pem).revoked is not None
    assert _upstream_revoked(bed, issued.chain_pem)


def test_account_key_rollover_with_acme(bed: Bed) -> None:
    """acme has no roll-over helper, but its JWS and network classes speak RFC 8555 §7.3.5."""
    client = acme_account(bed.relay.directory_url)
    assert client.net.account is not None and client.net.key is not None
    account_url = client.net.account.uri
    url = client.directory["keyChange"]
    new_key = jose.JWKEC(key=ec.generate_private_key(ec.SECP384R1()))
    payload = json.dumps({"account": account_url, "oldKey": client.net.key.public_key().to_json()}).encode()
    inner = acme_jws.JWS.sign(payload, key=new_key, alg=jose.ES384, nonce=None, url=url)
    client.net.post(url, inner, new_nonce_url=client.directory["newNonce"])  # outer: old key, kid
    assert _account_row(bed, account_url).thumbprint == jose.b64.b64encode(new_key.thumbprint()).decode()

    rolled = acme_client.ClientNetwork(new_key, account=client.net.account, alg=jose.ES384)
    fresh = acme_client.ClientV2(client.directory, rolled)
    # acme looks the account up by key (newAccount, onlyReturnExisting): the new key finds it...
    assert fresh.query_registration(client.net.account).uri == account_url
    with pytest.raises(messages.Error) as raised:
        client.query_registration(client.net.account)  # ...the old key no longer does
    assert raised.value.code == "accountDoesNotExist"
