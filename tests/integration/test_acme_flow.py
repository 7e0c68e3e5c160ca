"""RFC 8555 leg 1 through the Flask test client, on SQLite and PostgreSQL.

Names under ok.example.test resolve to 127.0.0.1 through the test BIND, where a local HTTP
server plays the client's web server; the relay's own HTTP-01 check runs from the job queue
(`drain()`, no worker threads). The upstream leg is never run: the `order` job that a ready
order queues is held back and only checked for in the jobs table.

Every response goes through AcmeTestClient, which fails the test on a missing Replay-Nonce or
Link rel="index", on any 5xx, and on an error that is not an ACME problem document.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Flask
from sqlalchemy import func, select, text, update
from werkzeug.test import TestResponse

from jackdaw.jobs import JobContext, JobKind, JobQueue, RetryLater
from jackdaw.models import Account, Job, Order, utcnow
from jackdaw.runtime import Runtime
from tests.signer import (
    AcmeTestClient,
    RequestSigner,
    csr_b64,
    ec_jwk,
    ec_private,
    make_csr,
    problem_type,
    rsa_jwk,
    rsa_private,
    with_broken_signature,
)
from tests.testbed import Bind

OK = "ok.example.test"  # *.ok.example.test -> 127.0.0.1 (tests/integration/conftest.py)
REFUSED = "refused.example.test"  # *.refused.example.test -> 127.0.0.2, where nothing listens
FAR_FUTURE = timedelta(days=365)


# --- the client's web server ---------------------------------------------------------------


class ChallengeServer:
    """Serves /.well-known/acme-challenge/<token> from `responses`; 404 for anything else."""

    def __init__(self) -> None:
        self.responses: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        self.hits: list[tuple[str, str]] = []  # (token, Host header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                token = self.path.removeprefix("/.well-known/acme-challenge/")
                server.hits.append((token, self.headers.get("Host", "")))
                status, body, headers = server.responses.get(token, (404, b"no such file", {}))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def serve(self, token: str, body: str | bytes, status: int = 200, **headers: str) -> None:
        self.responses[token] = (status, body.encode() if isinstance(body, str) else body, headers)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def web() -> Iterator[ChallengeServer]:
    server = ChallengeServer()
    yield server
    server.close()


@pytest.fixture
def app_env(bind: Bind, web: ChallengeServer) -> dict[str, str]:
    """Overrides conftest's: resolve through the test BIND, fetch from `web`."""
    return {"DNS_RESOLVER": bind.nameserver, "CHALLENGE_HTTP_PORT": str(web.port)}


# --- the relay --------------------------------------------------------------------------------


@dataclass
class Relay:
    app: Flask
    web: ChallengeServer
    order_job_runs: list[str] = field(default_factory=list)

    @property
    def runtime(self) -> Runtime:
        rt: Runtime = self.app.extensions["jackdaw"]
        return rt

    @property
    def queue(self) -> JobQueue:
        return self.runtime.queue

    def signer(self, key: Any) -> RequestSigner:
        return RequestSigner(self.app.test_client(), key)

    def run_jobs(self) -> None:
        self.queue.drain(timeout=15)

    def jobs(self, kind: str | None = None) -> list[tuple[str, str, int]]:
        with self.runtime.sessions() as s:
            q = select(Job.kind, Job.subject_id, Job.generation).order_by(Job.id)
            if kind:
                q = q.where(Job.kind == kind)
            return [tuple(r) for r in s.execute(q).all()]  # type: ignore[misc]

    def count(self, model: Any) -> int:
        with self.runtime.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)

    def order_row(self, order_url: str) -> Order:
        with self.runtime.sessions() as s:
            order = s.get(Order, order_url.rsplit("/", 1)[-1])
            assert order is not None
            return order


@pytest.fixture
def relay(app: Flask, web: ChallengeServer) -> Relay:
    app.test_client_class = AcmeTestClient
    r = Relay(app, web)
    queue = r.queue
    spec = queue.handlers[JobKind.VALIDATE]
    validate, give_up = spec.handler, spec.give_up

    def validate_then_hold_order_jobs(ctx: JobContext) -> None:
        validate(ctx)
        # A ready order queues leg 2 (`order`), which would call the upstream CA: keep the
        # row (that is what the tests check) but push it out of drain()'s reach.
        with queue.sessions.begin() as s:
            s.execute(update(Job).where(Job.kind == JobKind.ORDER).values(run_at=utcnow() + FAR_FUTURE))

    def order_job_must_not_run(ctx: JobContext) -> None:
        r.order_job_runs.append(ctx.subject_id)
        raise RetryLater("held by the test", FAR_FUTURE.total_seconds())

    queue.register(JobKind.VALIDATE, validate_then_hold_order_jobs, give_up)
    queue.register(JobKind.ORDER, order_job_must_not_run)
    return r


@pytest.fixture
def alice(relay: Relay) -> Iterator[RequestSigner]:
    signer = relay.signer(rsa_jwk(n=0))
    assert signer.new_account(contact=["mailto:alice@example.test"]).status_code == 201
    yield signer
    assert relay.order_job_runs == [], "the upstream leg ran"


@pytest.fixture
def bob(relay: Relay) -> RequestSigner:
    signer = relay.signer(ec_jwk(n=1))
    assert signer.new_account().status_code == 201
    return signer


# --- helpers ------------------------------------------------------------------------------------


def ok(resp: TestResponse, status: int = 200) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_json()
    doc: dict[str, Any] = resp.get_json()
    return doc


def problem(resp: TestResponse, code: str, status: int) -> dict[str, Any]:
    doc: dict[str, Any] = resp.get_json(force=True)
    assert (resp.status_code, problem_type(resp)) == (status, code), doc
    return doc


def names(*labels: str, domain: str = OK) -> list[str]:
    return [f"{label}.{domain}" for label in labels]


def new_order(signer: RequestSigner, *domains: str) -> tuple[str, dict[str, Any]]:
    resp = signer.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": d} for d in domains]})
    doc = ok(resp, 201)
    return resp.headers["Location"], doc


def challenge_of(signer: RequestSigner, authz_url: str) -> dict[str, Any]:
    authz = ok(signer.post_as_get(authz_url))
    [chall] = authz["challenges"]
    return dict(chall)


def respond(relay: Relay, signer: RequestSigner, order: dict[str, Any],
            serve: Callable[[str, str], None] | None = None) -> list[dict[str, Any]]:
    """Provision (via `serve(token, key_authorization)`, default: correctly) and POST {} to
    every challenge of the order; returns the challenges as the POST answered them."""
    answered = []
    for authz_url in order["authorizations"]:
        chall = challenge_of(signer, authz_url)
        (serve or relay.web.serve)(chall["token"], signer.key_authorization(chall["token"]))
        resp = signer.post(chall["url"], {})
        doc = ok(resp)
        assert doc["status"] == "processing" and resp.headers["Retry-After"]
        assert f'<{authz_url}>;rel="up"' in resp.headers.getlist("Link")
        answered.append(doc)
    return answered


def ready_order(relay: Relay, signer: RequestSigner, *domains: str) -> tuple[str, dict[str, Any]]:
    order_url, order = new_order(signer, *domains)
    respond(relay, signer, order)
    relay.run_jobs()
    order = ok(signer.post_as_get(order_url))
    assert order["status"] == "ready", order
    return order_url, order


def csr_for(*domains: str) -> str:
    return csr_b64(make_csr(ec_private("P-256", 7), list(domains)))


# --- directory, nonces, accounts ---------------------------------------------------------------


def test_directory(relay: Relay) -> None:
    client = relay.app.test_client()
    doc = ok(client.get("/directory"))
    assert doc["newNonce"] == "http://localhost/acme/new-nonce"
    assert doc["newAccount"] == "http://localhost/acme/new-account"
    assert doc["newOrder"] == "http://localhost/acme/new-order"
    assert doc["meta"]["externalAccountRequired"] is False


def test_new_nonce(relay: Relay) -> None:
    client = relay.app.test_client()
    head = client.head("/acme/new-nonce")
    get = client.get("/acme/new-nonce")
    assert (head.status_code, get.status_code) == (200, 204)
    for resp in (head, get):
        assert resp.headers["Cache-Control"] == "no-store"
    assert head.headers["Replay-Nonce"] != get.headers["Replay-Nonce"]


def test_new_account_then_same_key_again(relay: Relay) -> None:
    signer = relay.signer(rsa_jwk(n=0))
    first = signer.new_account(contact=["mailto:ops@example.test"])
    doc = ok(first, 201)
    location = first.headers["Location"]
    assert location.startswith("http://localhost/acme/acct/")
    assert doc["status"] == "valid" and doc["contact"] == ["mailto:ops@example.test"]
    assert doc["orders"] == location + "/orders"

    again = signer.new_account(contact=["mailto:other@example.test"])
    ok(again, 200)
    assert again.headers["Location"] == location
    existing = signer.post("/acme/new-account", {"onlyReturnExisting": True}, use_jwk=True)
    ok(existing, 200)
    assert existing.headers["Location"] == location
    assert relay.count(Account) == 1


def test_only_return_existing_for_an_unknown_key(relay: Relay) -> None:
    signer = relay.signer(ec_jwk(n=3))
    resp = signer.post("/acme/new-account", {"onlyReturnExisting": True}, use_jwk=True)
    problem(resp, "accountDoesNotExist", 400)
    assert relay.count(Account) == 0


def test_account_read_update_deactivate(relay: Relay, alice: RequestSigner) -> None:
    assert alice.kid is not None
    doc = ok(alice.post_as_get(alice.kid))  # POST-as-GET reads the account (lego does this)
    assert doc["contact"] == ["mailto:alice@example.test"]
    doc = ok(alice.post(alice.kid, {"contact": ["mailto:new@example.test"]}))
    assert doc["contact"] == ["mailto:new@example.test"]
    problem(alice.post(alice.kid, {"contact": ["tel:+1555"]}), "unsupportedContact", 400)
    problem(alice.post(alice.kid, {"contact": ["mailto:a@b.test,c@d.test"]}), "invalidContact", 400)
    problem(alice.post(alice.kid, {"status": "valid"}), "malformed", 400)
    assert ok(alice.post(alice.kid, {"status": "deactivated"}))["status"] == "deactivated"
    problem(alice.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": "a." + OK}]}),
            "unauthorized", 403)


# --- orders ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 3])
def test_new_order(relay: Relay, alice: RequestSigner, count: int) -> None:
    domains = names(*[f"h{i}" for i in range(count)])
    resp = alice.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": d.upper()} for d in domains]})
    order = ok(resp, 201)
    assert resp.headers["Location"].startswith("http://localhost/acme/order/")
    assert order["status"] == "pending"
    assert [i["value"] for i in order["identifiers"]] == domains
    assert order["finalize"] == resp.headers["Location"] + "/finalize"
    assert len(order["authorizations"]) == count
    for authz_url, domain in zip(order["authorizations"], domains, strict=True):
        authz = ok(alice.post_as_get(authz_url))
        assert authz["status"] == "pending" and authz["identifier"] == {"type": "dns", "value": domain}
        [chall] = authz["challenges"]
        assert chall["type"] == "http-01" and chall["status"] == "pending"
        assert len(chall["token"]) >= 43  # 256 bits, base64url
    listing = ok(alice.post_as_get(f"{alice.kid}/orders"))
    assert listing["orders"] == [resp.headers["Location"]]
    assert relay.jobs() == []
    # newOrder writes its rows with Core INSERTs: no JSON 'null' where SQL NULL belongs (the
    # sweeps and views select on IS NULL), and the columns the unit of work would have filled
    with relay.runtime.engine.connect() as conn:
        row = conn.execute(text("SELECT error IS NULL, csr IS NULL, created IS NOT NULL, budget FROM orders")).one()
        assert tuple(row) == (True, True, True, "held")
        assert conn.execute(text("SELECT count(*) FROM challenges WHERE error IS NULL AND validated IS NULL"
                                 " AND tries = 0 AND validation_records IS NOT NULL")).scalar() == count


@pytest.mark.parametrize(
    ("identifiers", "code"),
    [
        pytest.param([{"type": "dns", "value": "www.evil.com"}], "rejectedIdentifier", id="outside-allowed"),
        pytest.param([{"type": "dns", "value": "*." + OK}], "rejectedIdentifier", id="wildcard"),
        pytest.param([{"type": "ip", "value": "127.0.0.1"}], "rejectedIdentifier", id="ip"),
        pytest.param([{"type": "dns", "value": "a." + OK}, {"type": "dns", "value": "evil.com"}],
                     "rejectedIdentifier", id="one-of-two"),
        pytest.param([], "malformed", id="empty"),
    ],
)
def test_new_order_refused(relay: Relay, alice: RequestSigner, identifiers: list[dict[str, str]],
                           code: str) -> None:
    problem(alice.post("/acme/new-order", {"identifiers": identifiers}), code, 400)
    assert relay.count(Order) == 0


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 3])
def test_validation_makes_the_order_ready(relay: Relay, alice: RequestSigner, count: int) -> None:
    domains = names(*[f"h{i}" for i in range(count)])
    order_url, order = new_order(alice, *domains)
    answered = respond(relay, alice, order)
    assert sorted(relay.jobs()) == sorted((JobKind.VALIDATE, c["url"].rsplit("/", 1)[-1], 0) for c in answered)

    relay.run_jobs()

    for authz_url, domain in zip(order["authorizations"], domains, strict=True):
        authz = ok(alice.post_as_get(authz_url))
        assert authz["status"] == "valid"
        [chall] = authz["challenges"]
        assert chall["status"] == "valid" and chall["validated"]
        [record] = chall["validationRecord"]
        assert record["hostname"] == domain and record["addressUsed"] == "127.0.0.1"
        assert record["url"] == f"http://{domain}:{relay.web.port}/.well-known/acme-challenge/{chall['token']}"
    assert sorted(host for _, host in relay.web.hits) == sorted(f"{d}:{relay.web.port}" for d in domains)
    resp = alice.post_as_get(order_url)
    assert ok(resp)["status"] == "ready"
    assert "Retry-After" not in resp.headers
    assert relay.jobs() == []  # validations done; leg 2 waits for the client's finalize


def test_repeated_challenge_posts_start_one_validation(relay: Relay, alice: RequestSigner) -> None:
    _, order = new_order(alice, *names("www"))
    chall = challenge_of(alice, order["authorizations"][0])
    relay.web.serve(chall["token"], alice.key_authorization(chall["token"]))
    # four POSTs at once on the pending challenge (separate clients, as separate connections)
    signers = [relay.signer(alice.key) for _ in range(4)]
    for s in signers:
        s.kid = alice.kid
    barrier = threading.Barrier(len(signers))
    answers: list[tuple[int, str]] = []

    def post(s: RequestSigner) -> None:
        body = s.sign(chall["url"], {})
        barrier.wait()
        resp = s.send(chall["url"], body)
        answers.append((resp.status_code, resp.get_json()["status"]))

    threads = [threading.Thread(target=post, args=(s,)) for s in signers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [(200, "processing")] * 4
    # and again, one after the other
    for _ in range(3):
        assert ok(alice.post(chall["url"], {}))["status"] == "processing"
    assert relay.jobs() == [(JobKind.VALIDATE, chall["url"].rsplit("/", 1)[-1], 0)]  # queued once, never re-armed

    relay.run_jobs()
    assert len(relay.web.hits) == 1
    assert ok(alice.post(chall["url"], {}))["status"] == "valid"  # decided: answered, not restarted
    relay.run_jobs()
    assert len(relay.web.hits) == 1


def failed_validation(relay: Relay, alice: RequestSigner, domain: str,
                      serve: Callable[[str, str], None] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    order_url, order = new_order(alice, domain)
    respond(relay, alice, order, serve)
    relay.run_jobs()
    authz = ok(alice.post_as_get(order["authorizations"][0]))
    assert authz["status"] == "invalid"
    [chall] = authz["challenges"]
    assert chall["status"] == "invalid"
    order = ok(alice.post_as_get(order_url))
    assert order["status"] == "invalid"
    assert relay.jobs() == []  # nothing queued for an invalid order
    return chall, order


@pytest.mark.parametrize(
    ("serve", "code"),
    [
        pytest.param(lambda web: lambda token, keyauth: web.serve(token, "not the key authorization"),
                     "incorrectResponse", id="wrong-content"),
        pytest.param(lambda web: lambda token, keyauth: web.serve(token, keyauth + ".extra"),
                     "incorrectResponse", id="key-authorization-with-suffix"),
        pytest.param(lambda web: lambda token, keyauth: None, "unauthorized", id="http-404"),
        pytest.param(lambda web: lambda token, keyauth: web.serve(token, keyauth, status=500), "unauthorized",
                     id="http-500"),
        pytest.param(lambda web: lambda token, keyauth: web.serve(token, keyauth * 1000), "unauthorized",
                     id="oversized"),
        # outside ALLOWED_DOMAINS: the relay's fetch from inside must not be pointed anywhere
        pytest.param(lambda web: lambda token, keyauth: web.serve(
            token, "", status=302, Location=f"http://admin.corp.internal:{web.port}/.well-known/acme-challenge/x"),
            "unauthorized", id="redirect-outside-the-policy"),
    ],
)
def test_validation_fails(relay: Relay, alice: RequestSigner, serve: Callable[[ChallengeServer], Any],
                          code: str) -> None:
    domain = names("www")[0]
    chall, order = failed_validation(relay, alice, domain, serve(relay.web))
    assert chall["error"]["type"] == f"urn:ietf:params:acme:error:{code}"
    assert chall["error"]["identifier"] == {"type": "dns", "value": domain}
    assert order["error"]["type"] == f"urn:ietf:params:acme:error:{code}"


def test_validation_with_trailing_whitespace_passes(relay: Relay, alice: RequestSigner) -> None:
    """RFC 8555 §8.3: the server SHOULD ignore whitespace at the end of the body."""
    order_url, order = new_order(alice, *names("www"))
    respond(relay, alice, order, lambda token, keyauth: relay.web.serve(token, keyauth + "\r\n"))
    relay.run_jobs()
    assert ok(alice.post_as_get(order_url))["status"] == "ready"


def test_nothing_listening_is_a_connection_problem(relay: Relay, alice: RequestSigner) -> None:
    chall, _ = failed_validation(relay, alice, "www." + REFUSED, lambda token, keyauth: None)
    assert chall["error"]["type"] == "urn:ietf:params:acme:error:connection"
    assert chall["validationRecord"][0]["addressUsed"] == "127.0.0.2"


def test_unknown_name_is_a_dns_problem(relay: Relay, alice: RequestSigner) -> None:
    chall, _ = failed_validation(relay, alice, "no-such-host.example.test", lambda token, keyauth: None)
    assert chall["error"]["type"] == "urn:ietf:params:acme:error:dns"


def test_one_failed_name_fails_the_order(relay: Relay, alice: RequestSigner) -> None:
    domains = names("good", "bad")
    order_url, order = new_order(alice, *domains)

    def serve(token: str, keyauth: str) -> None:
        relay.web.serve(token, keyauth if len(relay.web.responses) == 0 else "wrong")

    respond(relay, alice, order, serve)
    relay.run_jobs()
    statuses = [ok(alice.post_as_get(a))["status"] for a in order["authorizations"]]
    assert statuses == ["valid", "invalid"]
    assert ok(alice.post_as_get(order_url))["status"] == "invalid"
    assert relay.jobs() == []


# --- finalize --------------------------------------------------------------------------------


def test_finalize_before_ready(relay: Relay, alice: RequestSigner) -> None:
    domain = names("www")[0]
    order_url, order = new_order(alice, domain)
    problem(alice.post(order["finalize"], {"csr": csr_for(domain)}), "orderNotReady", 403)
    assert ok(alice.post_as_get(order_url))["status"] == "pending"
    assert relay.jobs() == []


def test_finalize_refuses_bad_csrs_and_keeps_the_order_ready(relay: Relay, alice: RequestSigner) -> None:
    domains = names("a", "b")
    order_url, order = ready_order(relay, alice, *domains)
    jobs_before = relay.jobs()
    bad: list[tuple[str, dict[str, Any], str]] = [
        ("no csr", {}, "malformed"),
        ("not a csr", {"csr": csr_b64(b"garbage")}, "badCSR"),
        ("name missing", {"csr": csr_for(domains[0])}, "badCSR"),
        ("name extra", {"csr": csr_for(*domains, "c." + OK)}, "badCSR"),
        ("other name", {"csr": csr_for(domains[0], "c." + OK)}, "badCSR"),
        ("account key", {"csr": csr_b64(make_csr(rsa_private(2048, 0), domains))}, "badCSR"),
        ("rsa 1024", {"csr": csr_b64(make_csr(rsa_private(1024, 1), domains))}, "badCSR"),
        ("p-521", {"csr": csr_b64(make_csr(ec_private("P-521", 1), domains))}, "badCSR"),
        ("broken signature", {"csr": csr_b64(with_broken_signature(make_csr(ec_private("P-256", 1), domains)))},
         "badCSR"),
    ]
    for what, payload, code in bad:
        resp = alice.post(order["finalize"], payload)
        assert (resp.status_code, problem_type(resp)) == (400, code), (what, resp.get_json())
    assert ok(alice.post_as_get(order_url))["status"] == "ready"
    assert relay.jobs() == jobs_before
    # control: the same order still finalizes with a good CSR
    assert ok(alice.post(order["finalize"], {"csr": csr_for(*reversed(domains))}))["status"] == "processing"


def test_two_finalize_posts_start_one_issuance(relay: Relay, alice: RequestSigner) -> None:
    domains = names("www", "api")
    order_url, order = ready_order(relay, alice, *domains)
    order_id = order_url.rsplit("/", 1)[-1]
    csr = make_csr(ec_private("P-256", 7), domains)

    first = alice.post(order["finalize"], {"csr": csr_b64(csr)})
    doc = ok(first)
    assert doc["status"] == "processing"
    assert first.headers["Location"] == order_url and first.headers["Retry-After"]
    problem(alice.post(order["finalize"], {"csr": csr_b64(csr)}), "orderNotReady", 403)

    assert relay.jobs() == [(JobKind.ORDER, order_id, 0)]  # one job: queued by the finalize that was taken
    assert relay.order_row(order_url).csr == csr.public_bytes(Encoding.DER)  # sent upstream as-is


def test_concurrent_finalize_posts_start_one_issuance(relay: Relay, alice: RequestSigner) -> None:
    domains = names("www")
    order_url, order = ready_order(relay, alice, *domains)
    signers = [relay.signer(alice.key) for _ in range(3)]
    for s in signers:
        s.kid = alice.kid
    barrier = threading.Barrier(len(signers))
    results: list[tuple[int, str]] = []

    def post(s: RequestSigner) -> None:
        body = s.sign(order["finalize"], {"csr": csr_for(*domains)})
        barrier.wait()
        resp = s.send(order["finalize"], body)
        results.append((resp.status_code, resp.get_json(force=True).get("status")))

    threads = [threading.Thread(target=post, args=(s,)) for s in signers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [(200, "processing"), (403, 403), (403, 403)]
    assert relay.jobs() == [(JobKind.ORDER, order_url.rsplit("/", 1)[-1], 0)]


# --- isolation between accounts ------------------------------------------------------------------


def test_other_accounts_cannot_see_or_touch(relay: Relay, alice: RequestSigner, bob: RequestSigner) -> None:
    order_url, order = new_order(alice, *names("www"))
    authz_url = order["authorizations"][0]
    chall = challenge_of(alice, authz_url)

    for url in (order_url, authz_url, chall["url"]):
        problem(bob.post_as_get(url), "malformed", 404)
    problem(bob.post(chall["url"], {}), "malformed", 404)
    problem(bob.post(order["finalize"], {"csr": csr_for(*names("www"))}), "malformed", 404)
    problem(bob.post_as_get(f"{alice.kid}/orders"), "unauthorized", 403)
    problem(bob.post(alice.kid or "", {"status": "deactivated"}), "unauthorized", 403)
    assert relay.jobs() == []  # bob's challenge POST started nothing
    assert ok(alice.post_as_get(alice.kid or ""))["status"] == "valid"

    # unknown objects look exactly like other accounts' objects
    problem(alice.post_as_get("/acme/order/no-such-order"), "malformed", 404)
    problem(alice.post_as_get("/acme/authz/no-such-authz"), "malformed", 404)
    problem(alice.post_as_get("/acme/chall/no-such-chall"), "malformed", 404)
    problem(alice.post_as_get("/acme/cert/no-such-cert"), "malformed", 404)

    # and alice still gets hers
    assert ok(alice.post_as_get(order_url))["status"] == "pending"
    assert ok(bob.post_as_get(f"{bob.kid}/orders"))["orders"] == []
