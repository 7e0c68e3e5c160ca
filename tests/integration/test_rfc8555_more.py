"""The rest of RFC 8555 on leg 1: account update and deactivation, keyChange, revokeCert,
authorization deactivation, the orders list, and expiry — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from josepy import JWKEC
from sqlalchemy import select, update

from jackdaw.jobs import JobKind
from jackdaw.models import Account, Authz, Certificate, Order, utcnow
from jackdaw.wfe import views
from tests.integration.test_acme_flow import (  # noqa: F401 - fixtures
    ChallengeServer,
    Relay,
    alice,
    bob,
    new_order,
    ok,
    problem,
    ready_order,
    relay,
    web,
)
from tests.signer import DROP, RequestSigner, b64, ec_jwk, natural_alg, rsa_jwk
from tests.testbed import Bind

OK = "ok.example.test"


@pytest.fixture
def app_env(bind: Bind, web: ChallengeServer) -> dict[str, str]:
    """test_acme_flow's settings, plus wildcards under ok.example.test."""
    return {"DNS_RESOLVER": bind.nameserver, "CHALLENGE_HTTP_PORT": str(web.port), "WILDCARD_DOMAINS": OK}


def _account(relay: Relay, signer: RequestSigner) -> Account:
    with relay.runtime.sessions() as s:
        acct = s.get(Account, str(signer.kid).rsplit("/", 1)[-1])
        assert acct is not None
        return acct


# --- account update and deactivation (§7.3.2, §7.3.6) -----------------------------------------


def test_contact_update(relay: Relay, alice: RequestSigner) -> None:
    doc = ok(alice.post(str(alice.kid), {"contact": ["mailto:new@example.test"]}))
    assert doc["contact"] == ["mailto:new@example.test"]
    assert _account(relay, alice).contact == ["mailto:new@example.test"]
    problem(alice.post(str(alice.kid), {"contact": ["tel:+1555"]}), "unsupportedContact", 400)
    assert _account(relay, alice).contact == ["mailto:new@example.test"]


def test_deactivated_account_can_do_nothing(relay: Relay, alice: RequestSigner) -> None:
    order_url, _ = new_order(alice, f"a.{OK}")
    assert ok(alice.post(str(alice.kid), {"status": "deactivated"}))["status"] == "deactivated"
    problem(alice.post_as_get(order_url), "unauthorized", 403)
    problem(alice.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": f"b.{OK}"}]}),
            "unauthorized", 403)
    problem(alice.post(str(alice.kid), {"status": "valid"}), "unauthorized", 403)
    assert _account(relay, alice).status == "deactivated"


def test_account_status_other_than_deactivated_is_refused(alice: RequestSigner) -> None:
    problem(alice.post(str(alice.kid), {"status": "valid"}), "malformed", 400)


# --- keyChange (§7.3.5) --------------------------------------------------------------------------


def _key_change(signer: RequestSigner, new_key: Any, *, account: str | None = None, old_key: Any = None,
                inner_header: dict[str, Any] | None = None) -> Any:
    url = signer.url("/acme/key-change")
    inner_protected = {"alg": natural_alg(new_key), "jwk": new_key.public_key().to_partial_json(), "url": url,
                       **(inner_header or {})}
    inner_payload = {"account": account or signer.kid,
                     "oldKey": (old_key or signer.key).public_key().to_partial_json()}
    inner_signer = RequestSigner(None, new_key, nonces=lambda: "unused")
    inner = inner_signer.sign(url, inner_payload, header={"nonce": DROP, **inner_protected})
    return signer.post(url, json.dumps(inner).encode())


def test_key_change_rolls_the_account_key(relay: Relay, alice: RequestSigner) -> None:
    new_key = rsa_jwk(n=7)  # same key type as before, so the old key fails on its signature
    order_url, _ = new_order(alice, f"k.{OK}")
    ok(_key_change(alice, new_key))
    old_key = alice.key
    alice.key = new_key
    ok(alice.post_as_get(order_url))  # the new key works for the same account
    alice.key = old_key
    problem(alice.post_as_get(order_url), "malformed", 400)  # the old one no longer verifies


def test_key_change_to_a_key_in_use_is_a_conflict(relay: Relay, alice: RequestSigner, bob: RequestSigner) -> None:
    resp = _key_change(alice, bob.key)
    problem(resp, "malformed", 409)
    assert resp.headers["Location"] == bob.kid
    assert _account(relay, alice).jwk == alice.public_jwk


@pytest.mark.parametrize(
    ("case", "expected"),
    [("nonce in inner", "malformed"), ("wrong account", "malformed"), ("wrong old key", "malformed"),
     ("url mismatch", "malformed")],
    ids=lambda v: v,
)
def test_key_change_rejections(relay: Relay, alice: RequestSigner, case: str, expected: str) -> None:
    new_key = ec_jwk(n=8)
    kwargs: dict[str, Any] = {}
    if case == "nonce in inner":
        kwargs["inner_header"] = {"nonce": alice.nonce()}
    elif case == "wrong account":
        kwargs["account"] = alice.url("/acme/acct/someone-else")
    elif case == "wrong old key":
        kwargs["old_key"] = ec_jwk(n=9)
    else:
        kwargs["inner_header"] = {"url": alice.url("/acme/new-order")}
    resp = _key_change(alice, new_key, **kwargs)
    problem(resp, expected, 400)
    assert _account(relay, alice).jwk == alice.public_jwk


# --- authorization deactivation (§7.5.2) ---------------------------------------------------------


def test_authz_deactivation_invalidates_the_order(relay: Relay, alice: RequestSigner) -> None:
    order_url, order = new_order(alice, f"d.{OK}")
    doc = ok(alice.post(order["authorizations"][0], {"status": "deactivated"}))
    assert doc["status"] == "deactivated"
    assert ok(alice.post_as_get(order_url))["status"] == "invalid"
    problem(alice.post(order["authorizations"][0], {"status": "deactivated"}), "malformed", 400)
    problem(alice.post(order["authorizations"][0], {"status": "valid"}), "malformed", 400)


def test_bob_cannot_deactivate_alices_authz(relay: Relay, alice: RequestSigner, bob: RequestSigner) -> None:
    _, order = new_order(alice, f"e.{OK}")
    problem(bob.post(order["authorizations"][0], {"status": "deactivated"}), "malformed", 404)
    assert ok(alice.post_as_get(order["authorizations"][0]))["status"] == "pending"


# --- the orders list (§7.1.2.1) --------------------------------------------------------------------


def test_orders_list_is_paginated(relay: Relay, alice: RequestSigner, bob: RequestSigner,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "ORDERS_PAGE_SIZE", 2)
    urls = [new_order(alice, f"p{i}.{OK}")[0] for i in range(5)]
    new_order(bob, f"q.{OK}")
    seen: list[str] = []
    page_url: str | None = ok(alice.post_as_get(str(alice.kid)))["orders"]
    while page_url:
        resp = alice.post_as_get(page_url)
        seen += ok(resp)["orders"]
        nxt = [link for link in resp.headers.getlist("Link") if 'rel="next"' in link]
        page_url = nxt[0].split(">")[0].lstrip("<") if nxt else None
    assert seen == urls
    problem(bob.post_as_get(f"{alice.kid}/orders"), "unauthorized", 403)


# --- expiry ------------------------------------------------------------------------------------------


def test_expired_order_and_authz_are_shown_and_honoured(relay: Relay, alice: RequestSigner) -> None:
    order_url, order = new_order(alice, f"x.{OK}")
    order_id = order_url.rsplit("/", 1)[-1]
    past = utcnow() - timedelta(seconds=1)
    with relay.runtime.sessions.begin() as s:
        s.execute(update(Order).where(Order.id == order_id).values(expires=past))
        s.execute(update(Authz).where(Authz.order_id == order_id).values(expires=past))
    doc = ok(alice.post_as_get(order_url))
    assert doc["status"] == "invalid" and doc["error"]["type"].endswith(":malformed")
    authz = ok(alice.post_as_get(order["authorizations"][0]))
    assert authz["status"] == "expired"
    chall_url = authz["challenges"][0]["url"]
    assert ok(alice.post(chall_url, {}))["status"] == "pending"  # nothing starts on an expired authz
    assert relay.jobs() == []


# --- revokeCert (§7.6) ------------------------------------------------------------------------------


def _issue_directly(
    relay: Relay, signer: RequestSigner, name: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate row as leg 2 would have stored it (the upstream CA is not part of these tests)."""
    order_url, _ = new_order(signer, name)
    key = ec.generate_private_key(ec.SECP256R1())
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = utcnow()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    with relay.runtime.sessions.begin() as s:
        order = s.get(Order, order_url.rsplit("/", 1)[-1])
        assert order is not None
        order.status = "valid"
        s.add(Certificate(order_id=order.id, serial=format(cert.serial_number, "x"),
                          chain_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
                          not_after=cert.not_valid_after_utc))
    return cert, key


def _der(cert: x509.Certificate) -> str:
    return b64(cert.public_bytes(serialization.Encoding.DER))


def _revoked(relay: Relay, cert: x509.Certificate) -> Certificate:
    with relay.runtime.sessions() as s:
        row = s.scalars(select(Certificate).where(Certificate.serial == format(cert.serial_number, "x"))).one()
        return row


def test_owner_revokes_and_the_job_is_queued(relay: Relay, alice: RequestSigner, bob: RequestSigner) -> None:
    cert, _ = _issue_directly(relay, alice, f"r1.{OK}")
    problem(bob.post("/acme/revoke-cert", {"certificate": _der(cert)}), "unauthorized", 403)
    problem(alice.post("/acme/revoke-cert", {"certificate": _der(cert), "reason": 7}), "badRevocationReason", 400)
    assert _revoked(relay, cert).revoked is None
    resp = alice.post("/acme/revoke-cert", {"certificate": _der(cert), "reason": 4})
    assert resp.status_code == 200
    row = _revoked(relay, cert)
    assert row.revoked is not None and row.revocation_reason == 4
    assert [j[0] for j in relay.jobs(JobKind.REVOKE)] == [JobKind.REVOKE]
    problem(alice.post("/acme/revoke-cert", {"certificate": _der(cert)}), "alreadyRevoked", 400)


def test_certificate_key_may_revoke(relay: Relay, alice: RequestSigner) -> None:
    cert, key = _issue_directly(relay, alice, f"r2.{OK}")
    holder = relay.signer(JWKEC(key=key))
    resp = holder.post("/acme/revoke-cert", {"certificate": _der(cert), "reason": 1}, use_jwk=True)
    assert resp.status_code == 200
    assert _revoked(relay, cert).revocation_reason == 1
    stranger = relay.signer(ec_jwk(n=11))
    cert2, _ = _issue_directly(relay, alice, f"r3.{OK}")
    problem(stranger.post("/acme/revoke-cert", {"certificate": _der(cert2)}, use_jwk=True), "unauthorized", 403)


def test_unknown_certificate_is_not_found(relay: Relay, alice: RequestSigner) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    foreign = (
        x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(x509.Name([]))
        .public_key(ca_key.public_key()).serial_number(1).not_valid_before(utcnow())
        .not_valid_after(utcnow() + timedelta(days=1)).sign(ca_key, hashes.SHA256())
    )
    problem(alice.post("/acme/revoke-cert", {"certificate": _der(foreign)}), "malformed", 404)
    problem(alice.post("/acme/revoke-cert", {"certificate": "not base64 der"}), "malformed", 400)


def test_directory_lists_every_resource(relay: Relay) -> None:
    directory = relay.app.test_client().get("/directory").get_json()
    assert set(directory) >= {"newNonce", "newAccount", "newOrder", "revokeCert", "keyChange", "meta"}


# --- wildcards ----------------------------------------------------------------------------------------


def test_wildcard_authz_is_validated_at_its_base_name(relay: Relay, alice: RequestSigner) -> None:
    base = f"w.{OK}"
    _, order = ready_order(relay, alice, base, f"*.{base}")
    assert [i["value"] for i in order["identifiers"]] == [base, f"*.{base}"]
    authzs = [ok(alice.post_as_get(url)) for url in order["authorizations"]]
    assert [(a["identifier"]["value"], a.get("wildcard", False), a["status"]) for a in authzs] == [
        (base, False, "valid"), (base, True, "valid")]
    tokens = {a["challenges"][0]["token"] for a in authzs}
    assert {token for token, host in relay.web.hits if host.split(":")[0] == base} == tokens


def test_wildcard_outside_wildcard_domains(relay: Relay, alice: RequestSigner) -> None:
    resp = alice.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": "*.elsewhere.example.test"}]})
    problem(resp, "rejectedIdentifier", 400)
