"""Who may get which names, on SQLite and PostgreSQL, through the app: external account binding
(RFC 8555 §7.3.4), the policy a binding carries, the upstream budget ledger, and the CSR checks
that mirror the upstream CA's."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import josepy as jose
import pytest
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from jackdaw import create_app, states
from jackdaw.budget import Budget, Reservation, settle_budget
from jackdaw.jobs import JobContext, JobKind
from jackdaw.models import Account, BudgetBucket, Order, UpstreamPause
from jackdaw.ra import bindings
from jackdaw.runtime import Runtime
from jackdaw.upstream.dns01 import DNS01
from jackdaw.upstream.issuer import OrderJob
from jackdaw.upstream.sequence import Leg2
from tests.integration.conftest import relay_settings
from tests.integration.test_acme_flow import (  # noqa: F401 - fixtures
    OK,
    ChallengeServer,
    Relay,
    app_env,
    csr_for,
    names,
    new_order,
    ok,
    problem,
    ready_order,
    relay,
    respond,
    web,
)
from tests.integration.test_observability import BrokenUpstream, FlakyProvider, scrape, value
from tests.signer import AcmeTestClient, RequestSigner, csr_b64, ec_jwk
from tests.testbed import Bind


@pytest.fixture
def app_env(bind: Bind, web: ChallengeServer) -> dict[str, str]:
    return {"DNS_RESOLVER": bind.nameserver, "CHALLENGE_HTTP_PORT": str(web.port), "EAB_REQUIRED": "true",
            "BUDGET_CERTS_PER_SET": "2/7d", "BUDGET_RELAY_RESERVE": "0"}


def add_key(relay: Relay, name: str, *allow: str, **policy: Any) -> bindings.NewKey:
    with relay.runtime.sessions.begin() as s:
        return bindings.add_key(s, name, list(allow), **policy)


def binding_for(signer: RequestSigner, kid: str, hmac_key: str, url: str | None = None) -> dict[str, Any]:
    """What certbot's `acme` sends (messages.ExternalAccountBinding), MAC'd over the account key."""
    directory = messages.Directory({"newAccount": url or signer.url("/acme/new-account")})
    binding: dict[str, Any] = messages.ExternalAccountBinding.from_data(signer.key.public_key(), kid, hmac_key,
                                                                        directory)
    return binding


def bound_signer(relay: Relay, key: bindings.NewKey, n: int, **headers: str) -> RequestSigner:
    signer = relay.signer(ec_jwk(n=n))
    resp = signer.new_account(externalAccountBinding=binding_for(signer, key.kid, key.hmac_key))
    assert resp.status_code == 201, resp.get_json()
    return signer


# --- external account binding ---------------------------------------------------------------


def test_directory_says_a_binding_is_required(relay: Relay) -> None:
    doc = relay.app.test_client().get("/directory").get_json()
    assert doc["meta"]["externalAccountRequired"] is True


def test_new_account_needs_a_valid_binding(relay: Relay) -> None:
    key = add_key(relay, "team-a", "*.team-a.ok.example.test")
    signer = relay.signer(ec_jwk(n=10))
    problem(signer.new_account(), "externalAccountRequired", 400)
    wrong = bindings.NewKey(key.kid, jose.b64.b64encode(b"x" * 32).decode(), key.key)
    problem(signer.new_account(externalAccountBinding=binding_for(signer, wrong.kid, wrong.hmac_key)),
            "unauthorized", 403)
    problem(signer.new_account(externalAccountBinding=binding_for(signer, "no-such-kid", key.hmac_key)),
            "unauthorized", 403)
    other = relay.signer(ec_jwk(n=11))  # a binding made for another account's key
    problem(signer.new_account(externalAccountBinding=binding_for(other, key.kid, key.hmac_key)), "malformed", 400)
    problem(signer.new_account(externalAccountBinding=binding_for(signer, key.kid, key.hmac_key,
                                                                  url="https://elsewhere/new-acct")), "malformed", 400)
    with relay.runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Account)) == 0

    resp = signer.new_account(externalAccountBinding=binding_for(signer, key.kid, key.hmac_key))
    assert resp.status_code == 201
    assert signer.new_account().status_code == 200  # the same key finds its account, binding or not
    second = bound_signer(relay, key, 12)  # one key binds a team's several accounts
    with relay.runtime.sessions() as s:
        assert sorted(a.eab_kid for a in s.scalars(select(Account))) == [key.kid, key.kid]
    assert second.kid != signer.kid


def test_a_revoked_key_revokes_its_accounts(relay: Relay) -> None:
    key = add_key(relay, "gone", "*.ok.example.test")
    signer = bound_signer(relay, key, 20)
    new_order(signer, *names("before"))
    with relay.runtime.sessions.begin() as s:
        assert bindings.revoke_key(s, "gone") == 1
    doc = problem(signer.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": f"after.{OK}"}]}),
                  "unauthorized", 403)
    assert "revoked" in doc["detail"]
    late = relay.signer(ec_jwk(n=21))
    problem(late.new_account(externalAccountBinding=binding_for(late, key.kid, key.hmac_key)), "unauthorized", 403)


# --- the binding's policy -------------------------------------------------------------------


def order_problem(signer: RequestSigner, *values: str) -> dict[str, Any]:
    resp = signer.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": v} for v in values]})
    assert resp.status_code >= 400, resp.get_json()
    doc: dict[str, Any] = resp.get_json()
    return doc


def test_names_outside_the_keys_patterns_are_refused_naming_the_rule(relay: Relay) -> None:
    key = add_key(relay, "team-a", "*.team-a.ok.example.test", "exact.ok.example.test")
    signer = bound_signer(relay, key, 30)
    new_order(signer, "host.team-a.ok.example.test", "deep.host.team-a.ok.example.test", "exact.ok.example.test")
    doc = order_problem(signer, f"elsewhere.{OK}")
    assert doc["type"].endswith("rejectedIdentifier") and "EAB key team-a" in doc["detail"]
    assert "team-a.ok.example.test" in order_problem(signer, "team-a.ok.example.test")["detail"]  # not the apex
    assert "wildcard" in order_problem(signer, "*.team-a.ok.example.test")["detail"]


def test_wildcards_only_when_the_key_allows_them_and_never_the_apex_implicitly(relay: Relay) -> None:
    key = add_key(relay, "wild", "*.wild.ok.example.test", "listed.ok.example.test", wildcards=True)
    signer = bound_signer(relay, key, 31)
    new_order(signer, "*.sub.wild.ok.example.test")  # its base sub.wild... is under the pattern
    new_order(signer, "*.listed.ok.example.test")  # its base is listed exactly
    doc = order_problem(signer, "*.wild.ok.example.test")  # the base would be the apex: not listed
    assert doc["type"].endswith("rejectedIdentifier") and "wild.ok.example.test" in doc["detail"]


def test_source_networks_use_the_trusted_proxys_forwarded_address(relay: Relay) -> None:
    key = add_key(relay, "office", "*.ok.example.test", sources=["10.20.0.0/16"])
    signer = relay.signer(ec_jwk(n=40))
    payload = {"termsOfServiceAgreed": True, "externalAccountBinding": binding_for(signer, key.kid, key.hmac_key)}

    def post(path: str, body: dict[str, Any], forwarded: str, **sign: Any) -> Any:
        return signer.send(path, signer.sign(path, body, **sign), headers={"X-Forwarded-For": forwarded})

    doc = problem(post("/acme/new-account", payload, "10.99.1.1", use_jwk=True), "unauthorized", 403)
    assert "10.20.0.0/16" in doc["detail"] and "10.99.1.1" in doc["detail"]
    resp = post("/acme/new-account", payload, "10.20.3.4", use_jwk=True)  # the test client is 127.0.0.1: trusted
    assert resp.status_code == 201
    signer.kid = resp.headers["Location"]
    order = {"identifiers": [{"type": "dns", "value": f"net.{OK}"}]}
    problem(post("/acme/new-order", order, "192.0.2.7"), "unauthorized", 403)
    # a client cannot claim an address by sending the header itself past the proxy
    problem(post("/acme/new-order", order, "10.20.3.4, 192.0.2.7"), "unauthorized", 403)
    assert post("/acme/new-order", order, "192.0.2.7, 10.20.3.4").status_code == 201


def test_requester_must_be_among_the_names_addresses(relay: Relay) -> None:
    """ok.example.test names resolve to 127.0.0.1 in the test BIND; the test client is 127.0.0.1."""
    key = add_key(relay, "hosts", "*.ok.example.test", requester_in_dns=True)
    signer = bound_signer(relay, key, 50)
    ready_order(relay, signer, f"self.{OK}")  # requester 127.0.0.1 is the name's address: fine

    order_url, order = new_order(signer, f"other.{OK}")
    with relay.runtime.sessions.begin() as s:  # as if it had come from another host
        s.get(Order, order_url.rsplit("/", 1)[-1]).requester = "10.0.0.9"
    respond(relay, signer, order)
    relay.run_jobs()
    doc = ok(signer.post_as_get(order_url))
    assert doc["status"] == "invalid"
    assert doc["error"]["type"].endswith("unauthorized") and "10.0.0.9" in doc["error"]["detail"]


# --- the upstream budget --------------------------------------------------------------------


def test_a_third_certificate_for_one_set_is_refused_before_anything_goes_upstream(relay: Relay) -> None:
    """BUDGET_CERTS_PER_SET=2/7d here: two orders for one set hold its tokens, a third gets 429
    with Retry-After at the refill; a different set is unaffected; nothing was queued upstream."""
    key = add_key(relay, "b", "*.ok.example.test")
    signer = bound_signer(relay, key, 60)
    for _ in range(2):
        new_order(signer, f"same.{OK}", f"www.same.{OK}")
    resp = signer.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": f"www.same.{OK}"},
                                                           {"type": "dns", "value": f"same.{OK}"}]})
    doc = problem(resp, "rateLimited", 429)
    assert "certs-per-set" in doc["detail"]
    assert 30 * 3600 < int(resp.headers["Retry-After"]) <= 84 * 3600  # 2 per 7 days: one token per 3.5 days
    new_order(signer, f"other.{OK}")
    assert relay.jobs(JobKind.ORDER) == []
    samples = scrape(relay.app)
    assert value(samples, "jackdaw_budget_exhausted", limit="certs-per-set") == 1
    assert value(samples, "jackdaw_budget_remaining_lowest", limit="certs-per-set") < 0.01
    assert 297 <= value(samples, "jackdaw_budget_remaining_lowest", limit="new-orders") < 297.5  # (refilling)
    assert value(samples, "jackdaw_budget_refusals_total", reason="certs-per-set") >= 1
    assert value(samples, "jackdaw_upstream_paused_names") == 0


def test_a_client_quota_refuses_its_own_orders_only(relay: Relay) -> None:
    quota = add_key(relay, "q", "*.ok.example.test", orders_per_hour=2)
    free = add_key(relay, "free", "*.ok.example.test")
    limited, other = bound_signer(relay, quota, 70), bound_signer(relay, free, 71)
    new_order(limited, f"q1.{OK}")
    new_order(limited, f"q2.{OK}")
    resp = limited.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": f"q3.{OK}"}]})
    assert "client-orders" in problem(resp, "rateLimited", 429)["detail"]
    assert 0 < int(resp.headers["Retry-After"]) <= 1800
    new_order(other, f"q3.{OK}")


def test_a_reservation_not_used_is_given_back(relay: Relay) -> None:
    key = add_key(relay, "r", "*.ok.example.test")
    signer = bound_signer(relay, key, 80)
    order_url, _ = new_order(signer, f"back.{OK}")
    new_order(signer, f"back.{OK}")
    problem(signer.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": f"back.{OK}"}]}),
            "rateLimited", 429)
    rt = relay.runtime
    with rt.sessions.begin() as s:  # the client gave up: its order failed before going upstream
        order = s.get(Order, order_url.rsplit("/", 1)[-1])
        states.fail_order(order, {"type": "urn:ietf:params:acme:error:malformed", "detail": "gave up"})
    assert settle_budget(rt.sessions, rt.budget) == 1
    with rt.sessions() as s:
        assert s.get(Order, order_url.rsplit("/", 1)[-1]).budget == Reservation.SETTLED
    new_order(signer, f"back.{OK}")  # the token is back


def test_two_instances_never_spend_one_token_twice(database_url: str, tmp_path: Any, bind: Bind,
                                                   web: ChallengeServer) -> None:
    """Two apps on separate engines (two instances) and 20 newOrders at once for one set with
    BUDGET_CERTS_PER_SET=3/7d: exactly 3 are taken, 17 refused with 429."""
    env = {"DNS_RESOLVER": bind.nameserver, "CHALLENGE_HTTP_PORT": str(web.port), "BUDGET_CERTS_PER_SET": "3/7d"}
    apps = [create_app(relay_settings(database_url, tmp_path / f"data-{i}", **env)) for i in range(2)]
    try:
        signers = []
        for i in range(20):
            app = apps[i % 2]
            app.test_client_class = AcmeTestClient
            signer = RequestSigner(app.test_client(), ec_jwk(n=100 + i))
            assert signer.new_account().status_code == 201
            signers.append(signer)
        barrier = threading.Barrier(len(signers))
        statuses: list[int] = []
        body = {"identifiers": [{"type": "dns", "value": f"edge.{OK}"}]}
        signed = [s.sign("/acme/new-order", body) for s in signers]

        def send(i: int) -> None:
            barrier.wait()
            statuses.append(signers[i].send("/acme/new-order", signed[i]).status_code)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(signers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [201] * 3 + [429] * 17
        rt: Runtime = apps[0].extensions["jackdaw"]
        with rt.sessions() as s:
            bucket = s.scalars(select(BudgetBucket).where(BudgetBucket.limit == "certs-per-set")).one()
            assert bucket.tokens < 1
    finally:
        for app in apps:
            app.extensions["jackdaw"].stop()


def test_a_paused_account_is_detected_and_its_names_refused_locally(relay: Relay,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The CA's pause refusal, worded as Boulder's WFE sends it, fails the order, records the
    paused names with the unpause link, and the next order for them never goes upstream."""
    key = add_key(relay, "p", "*.ok.example.test")
    signer = bound_signer(relay, key, 90)
    order_url, order = ready_order(relay, signer, f"paused.{OK}")
    ok(signer.post(order["finalize"], {"csr": csr_for(f"paused.{OK}")}))
    rt = relay.runtime
    detail = (f"Your account is temporarily prevented from requesting certificates for paused.{OK}, also.{OK} "
              "and possibly others. Please visit: https://portal.letsencrypt.org/sfe/v1/unpause?jwt=abc.def.ghi")
    error = messages.Error(typ="urn:ietf:params:acme:error:rateLimited", detail=detail)
    leg2 = Leg2(rt.sessions, cast(Any, BrokenUpstream(error)), _dns01(rt), rt.budget)
    OrderJob(rt.sessions, leg2)(JobContext(1, JobKind.ORDER, order_url.rsplit("/", 1)[-1], 1, None))
    failed = ok(signer.post_as_get(order_url))
    assert failed["status"] == "invalid" and "paused for" in failed["error"]["detail"]
    assert "jwt=" not in failed["error"]["detail"]  # the unpause link is the operator's (the log, `jackdaw budget`)
    with rt.sessions() as s:
        pauses = {p.name: p.unpause_url for p in s.scalars(select(UpstreamPause))}
    assert pauses == {f"paused.{OK}": "https://portal.letsencrypt.org/sfe/v1/unpause?jwt=abc.def.ghi",
                      f"also.{OK}": "https://portal.letsencrypt.org/sfe/v1/unpause?jwt=abc.def.ghi"}
    doc = order_problem(signer, f"also.{OK}")
    assert doc["type"].endswith("rateLimited") and "paused" in doc["detail"]
    assert "jwt=" not in doc["detail"]
    from jackdaw.ops import commands

    assert commands.check(rt.settings) == 0  # the operator's check names it
    assert f"paused issuance for also.{OK}" in capsys.readouterr().err
    with rt.sessions.begin() as s:
        assert Budget.unpause(s, [f"also.{OK}"]) == 1
    new_order(signer, f"also.{OK}")


def test_an_upstream_rate_limit_reaches_the_client_with_its_time_not_the_cas_words(relay: Relay) -> None:
    key = add_key(relay, "r", "*.ok.example.test")
    signer = bound_signer(relay, key, 90)
    order_url, order = ready_order(relay, signer, f"limited.{OK}")
    ok(signer.post(order["finalize"], {"csr": csr_for(f"limited.{OK}")}))
    rt = relay.runtime
    until = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    detail = (f"too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, "
              f"retry after {until:%Y-%m-%d %H:%M:%S} UTC: see https://letsencrypt.org/docs/rate-limits/ "
              "(account https://acme-v02.api.letsencrypt.org/acme/acct/4711)")
    error = messages.Error(typ="urn:ietf:params:acme:error:rateLimited", detail=detail)
    leg2 = Leg2(rt.sessions, cast(Any, BrokenUpstream(error)), _dns01(rt), rt.budget)
    OrderJob(rt.sessions, leg2)(JobContext(1, JobKind.ORDER, order_url.rsplit("/", 1)[-1], 1, None))
    resp = signer.post_as_get(order_url)
    failed = ok(resp)
    assert failed["status"] == "invalid" and failed["error"]["type"].endswith("rateLimited")
    assert f"retry after {until:%Y-%m-%d %H:%M:%S} UTC" in failed["error"]["detail"]
    assert "4711" not in failed["error"]["detail"] and "reference " in failed["error"]["detail"]
    assert 7000 < int(resp.headers["Retry-After"]) <= 7201


def _dns01(rt: Runtime) -> DNS01:
    return DNS01(rt.settings, FlakyProvider(cleanup_failures=0), rt.sessions, rt.queue)


# --- CSRs the upstream CA would refuse -------------------------------------------------------


def _csr(key: Any, sans: list[x509.GeneralName], *extensions: x509.ExtensionType) -> str:
    builder = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr.ok.example.test")]))
               .add_extension(x509.SubjectAlternativeName(sans), critical=False))
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    return csr_b64(builder.sign(key, hashes.SHA256()))


P256 = ec.generate_private_key(ec.SECP256R1())
DNS_SAN = [x509.DNSName("csr.ok.example.test")]


@pytest.mark.parametrize(
    ("csr", "needle"),
    [
        pytest.param(lambda: _csr(P256, [*DNS_SAN, x509.RFC822Name("ops@example.test")]), "RFC822Name", id="email"),
        pytest.param(lambda: _csr(P256, [*DNS_SAN, x509.UniformResourceIdentifier("https://x.test/")]),
                     "UniformResourceIdentifier", id="uri"),
        pytest.param(lambda: _csr(P256, DNS_SAN, x509.TLSFeature([x509.TLSFeatureType.status_request])),
                     "must-staple", id="must-staple"),
        pytest.param(lambda: _csr(P256, DNS_SAN, x509.BasicConstraints(ca=True, path_length=None)), "CA:true",
                     id="ca-true"),
        pytest.param(lambda: _csr(rsa.generate_private_key(3, 2048), DNS_SAN), "exponent", id="rsa-e3"),
        pytest.param(lambda: _csr(rsa.generate_private_key(65537, 4608), DNS_SAN), "4096", id="rsa-4608"),
    ],
)
def test_csrs_the_upstream_would_refuse_are_refused_at_finalize(relay: Relay, csr: Any, needle: str) -> None:
    key = add_key(relay, "csr", "*.ok.example.test")
    signer = bound_signer(relay, key, 95)
    _, order = ready_order(relay, signer, "csr.ok.example.test")
    doc = problem(signer.post(order["finalize"], {"csr": csr()}), "badCSR", 400)
    assert needle in doc["detail"]
    assert relay.jobs(JobKind.ORDER) == []  # nothing goes upstream
    ok(signer.post(order["finalize"], {"csr": _csr(P256, DNS_SAN)}))  # control: a good one still finalizes


def test_the_check_warns_when_nothing_limits_names(tmp_path: Any, capsys: pytest.CaptureFixture[str],
                                                   database_url: str) -> None:
    from jackdaw.ops import commands

    open_settings = relay_settings(database_url, tmp_path, ALLOWED_DOMAINS="")
    assert commands.check(open_settings) == 0
    assert "WARNING: neither EAB_REQUIRED nor ALLOWED_DOMAINS" in capsys.readouterr().err
    assert commands.check(relay_settings(database_url, tmp_path)) == 0
    assert "WARNING" not in capsys.readouterr().err
