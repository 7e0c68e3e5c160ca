"""`jackdaw certificates --expiring-within/--name` with the current certificate marked,
`jackdaw account block|unblock`, `jackdaw certificate revoke` (SQLite and PostgreSQL).

Rows come from test_cli's seed; the block is checked through the ACME server itself.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from jackdaw.cli import main
from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.models import Account, Certificate, Job, Order, utcnow
from tests.integration.test_cli import PROBLEM, Seed, cli_env, rows, run, run_json, seed, settings_env
from tests.signer import RequestSigner, ec_jwk

__all__ = ["cli_env", "seed", "settings_env"]  # fixtures, imported for pytest


def _superseded(seed: Seed) -> None:
    """An older certificate of bob's set soon.example.test, from another order: not current."""
    engine = make_engine(seed.url)
    with make_sessionmaker(engine).begin() as s:
        bob = s.get(Account, seed.bob)
        assert bob is not None
        now = utcnow()
        older = Order(account=bob, account_id=bob.id, status="valid", identifiers=["SOON.example.test"],
                      expires=now + timedelta(days=1), created=now - timedelta(days=60))
        s.add(older)
        s.flush()
        s.add(Certificate(order=older, serial="dd04", chain_pem="-", not_after=now + timedelta(days=5)))
    engine.dispose()


def test_certificates_mark_the_current_one_and_filter(capsys: pytest.CaptureFixture[str], seed: Seed) -> None:
    _superseded(seed)
    data = run_json(capsys, "certificates")
    assert [(c["serial"], c["current"]) for c in data] == [
        ("cc03", False),  # revoked: never current
        ("dd04", False),  # superseded by bb02 for the same names
        ("bb02", True), ("aa01", True)]
    rc, out, _ = run(capsys, "certificates")
    assert rc == 0 and out.splitlines()[0].split()[6] == "CURRENT"  # SERIAL NOT AFTER DAYS LEFT REVOKED
    assert [line.split()[0] for line in out.splitlines() if " current " in line] == ["bb02", "aa01"]

    soon = run_json(capsys, "certificates", "--expiring-within", "10")
    assert [c["serial"] for c in soon] == ["cc03", "dd04"]  # bb02 has 10 days and an hour
    assert [c["serial"] for c in run_json(capsys, "certificates", "--expiring-within", "11")] == [
        "cc03", "dd04", "bb02"]
    assert [c["serial"] for c in run_json(capsys, "certificates", "--name", "soon.example.test")] == ["dd04", "bb02"]
    assert [c["serial"] for c in run_json(capsys, "certificates", "--name", "Example.TEST.")] == ["aa01"]
    assert run_json(capsys, "certificates", "--name", "example") == []  # a name, not a substring
    assert [c["serial"] for c in run_json(capsys, "certificates", "--name", "soon.example.test",
                                          "--expiring-within", "7")] == ["dd04"]
    with pytest.raises(SystemExit) as exc:
        main(["certificates", "--expiring-within", "soon"])
    assert exc.value.code == 2


def test_certificate_revoke_goes_the_revocation_path(capsys: pytest.CaptureFixture[str], seed: Seed) -> None:
    rc, out, err = run(capsys, "certificate", "revoke", "BB:02", "--reason", "superseded")
    assert rc == 0, err
    assert "certificate bb02 revoked (superseded)" in out
    [cert] = rows(seed.url, Certificate, Certificate.serial == "bb02")
    assert cert.revoked is not None and cert.revocation_reason == 4 and cert.upstream_revoked is None
    [job] = rows(seed.url, Job, Job.kind == "revoke")
    assert job.subject_id == cert.id  # the running relay's RevokeJob forwards it upstream
    assert not run_json(capsys, "certificates", "--name", "soon.example.test")[0]["current"]

    rc, out, err = run(capsys, "certificate", "revoke", "bb02")
    assert (rc, out) == (1, "") and "already revoked" in err
    rc, out, err = run(capsys, "certificate", "revoke", "ffff")
    assert (rc, out) == (1, "") and "no certificate with serial 'ffff'" in err
    for reason in ("2", "cACompromise", "nonsense"):  # only the reasons a subscriber may give
        with pytest.raises(SystemExit) as exc:
            main(["certificate", "revoke", "aa01", "--reason", reason])
        assert exc.value.code == 2
    capsys.readouterr()
    rc, _, err = run(capsys, "certificate", "revoke", "aa01", "--reason", "1")
    assert rc == 0, err
    assert rows(seed.url, Certificate, Certificate.serial == "aa01")[0].revocation_reason == 1


def test_account_block_and_unblock(capsys: pytest.CaptureFixture[str], seed: Seed) -> None:
    rc, out, err = run(capsys, "account", "block", seed.alice)
    assert rc == 0 and "blocked" in out, err
    [alice] = rows(seed.url, Account, Account.id == seed.alice)
    assert alice.blocked is not None and alice.status == "valid"  # the RFC status is untouched
    listed = {a["id"]: a for a in run_json(capsys, "accounts")}
    assert listed[seed.alice]["blocked"] is not None and listed[seed.bob]["blocked"] is None
    rc, out, _ = run(capsys, "accounts")
    assert "valid, blocked" in next(line for line in out.splitlines() if line.startswith(seed.alice))

    for argv, why in ((["block", seed.alice], "already blocked"),
                      (["block", seed.carol], "deactivated, which is final"),
                      (["unblock", seed.bob], "not blocked"), (["block", "no-such-account"], "no account")):
        rc, out, err = run(capsys, "account", *argv)
        assert (rc, out) == (1, "") and why in err, (argv, err)
    rc, out, err = run(capsys, "account", "unblock", seed.alice)
    assert rc == 0 and "unblocked" in out, err
    assert rows(seed.url, Account, Account.id == seed.alice)[0].blocked is None


def test_a_blocked_account_is_refused_with_unauthorized(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, settings_env: None,
        app: Flask, client: FlaskClient, database_url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    signer = RequestSigner(client, ec_jwk(n=7))
    assert signer.new_account().status_code == 201
    assert signer.kid is not None
    account_id = signer.kid.rsplit("/", 1)[1]
    order = {"identifiers": [{"type": "dns", "value": "blocked.example.test"}]}

    assert run(capsys, "account", "block", account_id)[0] == 0
    refused = signer.post("/acme/new-order", order)
    assert refused.status_code == 403
    assert refused.get_json()["type"] == PROBLEM + "unauthorized"
    assert "blocked by the relay's operator" in refused.get_json()["detail"]
    assert signer.post_as_get(signer.kid).status_code == 403  # every signed request, not just new orders

    assert run(capsys, "account", "unblock", account_id)[0] == 0
    assert signer.post("/acme/new-order", order).status_code == 201
