"""Jackdaw behind a real nginx, with the certificate it obtains for itself through leg 2.

The relay boots with no certificate, writes a self-signed placeholder that nginx starts with,
obtains its own certificate for relay.example.test from Pebble (DNS-01 on BIND), writes it and
reloads nginx (`nginx -s reload`, RELAY_CERT_RELOAD_COMMAND). Then certbot gets a certificate
through https://relay.example.test:<port>/directory, and a forced renewal swaps the served
certificate while requests keep flowing.

Name resolution for certbot: certbot (requests) resolves relay.example.test through the system
resolver and has no --resolve option. The test runs it in a private mount namespace
(`unshare --mount`) in which a temporary hosts file is bind-mounted over /etc/hosts: only that
certbot process sees the entry, the machine's /etc/hosts is never touched, and TLS is verified
for the real name against Pebble's root. That needs root (CAP_SYS_ADMIN), which the e2e bed
has; without it this test fails with the reason rather than skipping. The test's own requests
use PinnedHTTPSConnection (connect to 127.0.0.1, SNI and verification for the name).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from selenium.webdriver.common.by import By

from jackdaw.wfe.errors import DRAIN_LIMIT
from tests.browser import chromium, full_page_screenshot
from tests.clients import certbot, check_certificate
from tests.e2e.conftest import STATUS_TOKEN, ZONE
from tests.nginx import Nginx, PinnedHTTPSConnection, get, served_certificate, tls_context
from tests.relay import ROOT, Relay, relay_env
from tests.testbed import Bind, Pebble, free_port

DOMAIN = f"relay.{ZONE}"
BIN = Path(sys.executable).parent


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = 60.0, relay: Relay | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout:.0f} s" + (f"; relay log:\n{relay.log_tail()}" if relay else ""))


def leaf_of(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


@dataclass
class Stack:
    relay: Relay
    nginx: Nginx
    pebble: Pebble
    cert_dir: Path
    #: Pebble's root and intermediate: what a client of the relay trusts
    bundle: Path
    challenge_port: int
    placeholder: x509.Certificate
    first_served: x509.Certificate
    issued_served: x509.Certificate

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "python"), "-m", "jackdaw.cli", *args], cwd=ROOT, env=self.relay.env,
                              capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, bind: Bind, pebble: Pebble) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("nginx-stack")
    cert_dir = workdir / "tls"
    relay_port = free_port()
    nginx = Nginx(workdir / "nginx", DOMAIN, f"127.0.0.1:{relay_port}", cert_dir)
    challenge_port = free_port()
    env = relay_env(
        workdir, bind, pebble, challenge_port,
        ALLOWED_DOMAINS=ZONE,
        RELAY_DOMAIN=DOMAIN,
        RELAY_CERT_ENABLED="true",
        RELAY_CERT_DIR=str(cert_dir),
        RELAY_CERT_RELOAD_COMMAND=nginx.reload_command,
        # a floor under DNS-01 so that nginx is surely up with the placeholder before the real
        # certificate arrives (the propagation check itself takes milliseconds here)
        DNS_PROPAGATION_WAIT="3",
        STATUS_TOKEN=STATUS_TOKEN,
    )
    bundle = workdir / "pebble-roots.pem"
    bundle.write_text(pebble.roots_pem() + pebble.intermediates_pem())
    relay = Relay(workdir, env, port=relay_port)
    assert not cert_dir.exists()
    with ExitStack() as running:
        running.enter_context(relay)
        # gunicorn answered /directory: start-up did not wait for any certificate
        wait_for("the placeholder", lambda: (cert_dir / "fullchain.pem").exists(), 10, relay)
        placeholder = leaf_of(cert_dir / "fullchain.pem")
        running.enter_context(nginx)
        initial_workers = nginx.workers()
        assert initial_workers
        # the placeholder is self-signed: trusting exactly it proves what nginx serves
        first_served = served_certificate(DOMAIN, nginx.https_port, cert_dir / "fullchain.pem")

        issued: list[x509.Certificate] = []

        def real_certificate_served() -> bool:
            try:
                issued.append(served_certificate(DOMAIN, nginx.https_port, bundle))
                return True
            except OSError:  # ssl.SSLError: still the placeholder
                return False

        wait_for("nginx serving the relay's own certificate", real_certificate_served, 60, relay)
        # the reload is complete once the workers that had the placeholder are gone (until
        # then they may still accept a connection or two)
        wait_for("the placeholder's workers to exit", lambda: not nginx.workers() & initial_workers, 30)
        yield Stack(relay, nginx, pebble, cert_dir, bundle, challenge_port, placeholder, first_served, issued[0])


def test_nginx_starts_with_the_placeholder_then_serves_the_relays_certificate(stack: Stack) -> None:
    placeholder = stack.placeholder
    assert placeholder.issuer == placeholder.subject
    assert placeholder.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Jackdaw placeholder"
    assert stack.first_served.serial_number == placeholder.serial_number, "nginx did not start with the placeholder"

    served = stack.issued_served
    on_disk = x509.load_pem_x509_certificates((stack.cert_dir / "fullchain.pem").read_bytes())
    assert served.serial_number == on_disk[0].serial_number
    assert served.issuer != served.subject
    assert served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [DOMAIN]
    root = x509.load_pem_x509_certificate(stack.pebble.roots_pem().encode())
    for child, parent in zip(on_disk, [*on_disk[1:], root], strict=True):
        child.verify_directly_issued_by(parent)
    assert os.stat(stack.cert_dir / "privkey.pem").st_mode & 0o777 == 0o600
    assert "TLS server reloaded" in stack.relay.log_path.read_text()
    assert not (stack.cert_dir / ".reload-pending").exists()


def test_urls_through_nginx_are_https_on_the_relay_name(stack: Stack) -> None:
    base = stack.nginx.base_url
    response, body, _ = get(DOMAIN, stack.nginx.https_port, "/directory", stack.bundle)
    assert response.status == 200
    urls = [v for v in json.loads(body).values() if isinstance(v, str)]
    assert urls and all(u.startswith(f"{base}/") for u in urls), urls
    response, _, _ = get(DOMAIN, stack.nginx.https_port, "/acme/new-nonce", stack.bundle, method="HEAD")
    assert f"<{base}/directory>;rel=\"index\"" in response.headers["Link"].replace(" ", "")
    response, _, _ = get(DOMAIN, stack.nginx.https_port, "/metrics", stack.bundle)
    assert response.status == 404, "/metrics is for the scraper on gunicorn's port, not the public side"
    # plain http on the relay name is sent to https
    conn = http.client.HTTPConnection("127.0.0.1", stack.nginx.http_port, timeout=5)
    try:
        conn.request("GET", "/directory", headers={"Host": DOMAIN})
        redirect = conn.getresponse()
        assert (redirect.status, redirect.headers["Location"]) == (301, f"https://{DOMAIN}/directory")
    finally:
        conn.close()


@pytest.mark.parametrize(("front", "size"), [("gunicorn", 70_000), ("gunicorn", DRAIN_LIMIT - 2),
                                             ("nginx", 70_000), ("nginx", 3 * DRAIN_LIMIT)])
def test_an_oversized_body_gets_413_and_the_connection_survives(stack: Stack, front: str, size: int) -> None:
    """413 with the problem document, never a reset or a 502, then the next request works: on the
    same connection (gunicorn reads the body up to DRAIN_LIMIT first), or on a new one after
    nginx's own ``Connection: close``. (Past DRAIN_LIMIT gunicorn alone closes mid-body: the
    README puts nginx in front.)"""
    conn: http.client.HTTPConnection
    if front == "gunicorn":
        conn = http.client.HTTPConnection("127.0.0.1", stack.relay.port, timeout=10)
    else:
        conn = PinnedHTTPSConnection(DOMAIN, stack.nginx.https_port, context=tls_context(stack.bundle), timeout=10)
    body = b"{" + b" " * size + b"}"
    refused_by_jackdaw = stack.relay.log_path.read_text().count("request body larger than")
    try:
        for _ in range(5):
            conn.request("POST", "/acme/new-order", body=body, headers={"Content-Type": "application/jose+json"})
            resp = conn.getresponse()
            doc = json.loads(resp.read())
            assert resp.status == 413, (resp.status, doc)
            assert resp.headers["Content-Type"].startswith("application/problem+json")
            assert doc == {"type": "urn:ietf:params:acme:error:malformed", "status": 413,
                           "detail": "request body larger than 65536 bytes"}
            if resp.will_close:
                assert front == "nginx" and resp.headers["Connection"] == "close"
            kept = conn.sock is not None
            conn.request("GET", "/directory")
            after = conn.getresponse()
            assert after.status == 200 and "newOrder" in json.loads(after.read())
            assert kept or front == "nginx"
    finally:
        conn.close()
    now = stack.relay.log_path.read_text().count("request body larger than")
    assert now == refused_by_jackdaw + (5 if front == "gunicorn" else 0), "nginx refuses first, never passing it on"


#: more than gunicorn's request threads (JACKDAW_THREADS, 4 by default)
SLOW_CLIENTS = 8


def _slow_header_clients(connect: Callable[[], socket.socket], stop: threading.Event) -> list[threading.Thread]:
    """Clients that send a request line, then one header line every 0.3 s, never the blank
    line that ends the headers (slowloris)."""
    def trickle() -> None:
        with connect() as sock:
            sock.sendall(b"GET /directory HTTP/1.1\r\nHost: " + DOMAIN.encode() + b"\r\n")
            n = 0
            while not stop.wait(0.3):
                n += 1
                try:
                    sock.sendall(f"X-Slow-{n}: 1\r\n".encode())
                except OSError:
                    return

    threads = [threading.Thread(target=trickle, daemon=True) for _ in range(SLOW_CLIENTS)]
    for t in threads:
        t.start()
    return threads


@pytest.mark.parametrize("front", ["nginx", "gunicorn"])
def test_nginx_shields_gunicorn_from_slow_header_clients(stack: Stack, front: str) -> None:
    """Behind nginx, a slow-header client holds none of gunicorn's threads: nginx passes on only
    whole requests, so others are served at once. Straight to gunicorn, a few such clients hold
    every request thread (the README: gunicorn stays behind nginx)."""
    context = tls_context(stack.bundle)

    def connect() -> socket.socket:
        if front == "gunicorn":
            return socket.create_connection(("127.0.0.1", stack.relay.port), timeout=10)
        raw = socket.create_connection(("127.0.0.1", stack.nginx.https_port), timeout=10)
        return context.wrap_socket(raw, server_hostname=DOMAIN)

    def served_within(seconds: float) -> bool:
        conn: http.client.HTTPConnection
        if front == "gunicorn":
            conn = http.client.HTTPConnection("127.0.0.1", stack.relay.port, timeout=seconds)
        else:
            conn = PinnedHTTPSConnection(DOMAIN, stack.nginx.https_port, context=context, timeout=seconds)
        try:
            conn.request("GET", "/directory")
            return conn.getresponse().status == 200
        except OSError:  # TimeoutError: no thread took the request
            return False
        finally:
            conn.close()

    stop = threading.Event()
    slow = _slow_header_clients(connect, stop)
    try:
        time.sleep(1.0)  # every slow client connected and trickling
        served = [served_within(2.0) for _ in range(3)]
    finally:
        stop.set()
        for t in slow:
            t.join(10)
    if front == "nginx":
        assert served == [True] * 3
    else:
        assert served == [False] * 3, "gunicorn alone served others meanwhile: this test shows nothing"
    wait_for("gunicorn serving again", lambda: served_within(5.0), 30)


def test_certbot_issues_through_nginx(stack: Stack, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n::1 localhost\n127.0.0.1 {DOMAIN}\n")
    # a private mount namespace: the bind mount over /etc/hosts exists for certbot only
    wrapper = ["unshare", "--mount", "--propagation", "private",
               "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts)]
    probe = subprocess.run([*wrapper, "getent", "hosts", DOMAIN], capture_output=True, text=True, timeout=10)
    assert probe.returncode == 0 and "127.0.0.1" in probe.stdout, (
        f"cannot give certbot a private /etc/hosts (unshare --mount needs root): {probe.stderr}")

    names = [f"nginx-certbot.{ZONE}"]
    issued = certbot(tmp_path / "certbot", f"{stack.nginx.base_url}/directory", names,
                     standalone_port=stack.challenge_port, env={"REQUESTS_CA_BUNDLE": str(stack.bundle)},
                     wrapper=wrapper)
    check_certificate(issued, names, stack.pebble.roots_pem())
    assert "relay.example.test" not in Path("/etc/hosts").read_text()


def test_forced_renewal_swaps_the_certificate_without_dropping_a_request(stack: Stack) -> None:
    before = leaf_of(stack.cert_dir / "fullchain.pem").serial_number
    seen: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                response, _, serial = get(DOMAIN, stack.nginx.https_port, "/directory", stack.bundle)
                if response.status != 200:
                    failures.append(f"HTTP {response.status}")
                seen.append(serial)
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")

    old_workers = stack.nginx.workers()
    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        proc = stack.cli("relay-cert", "renew", "--force")
        assert proc.returncode == 0, proc.stderr
        wait_for("the renewed certificate served", lambda: bool(seen) and seen[-1] != before, 60, stack.relay)
        wait_for("the old workers to exit", lambda: not stack.nginx.workers() & old_workers, 30)
        time.sleep(0.5)  # and requests keep working after the old workers are gone
    finally:
        stop.set()
        for t in threads:
            t.join(15)

    after = leaf_of(stack.cert_dir / "fullchain.pem").serial_number
    assert after != before
    assert failures == []
    assert seen[0] == before and seen[-1] == after
    assert set(seen) == {before, after}
    assert len(seen) > 20, "too few requests to prove anything"
    assert not (stack.cert_dir / ".force-renew").exists()


def test_status_command(stack: Stack) -> None:
    proc = stack.cli("relay-cert", "status")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"directory: {stack.cert_dir}" in out
    assert "placeholder: no" in out
    serial = format(leaf_of(stack.cert_dir / "fullchain.pem").serial_number, "x")
    assert f"serial: {serial}" in out
    assert "renewal: not due" in out


def _operators_allowed(site: str) -> str:
    """The operator's edit the site's comment suggests: their network (here loopback) may reach /status."""
    assert site.count("# allow 10.0.0.0/8;") == 1
    return site.replace("# allow 10.0.0.0/8;", "allow 127.0.0.1;")


def test_the_status_page_stays_internal(stack: Stack, tmp_path: Path) -> None:
    """nginx denies /status whoever asks; with the operators' network allowed the relay still
    sees a forwarded request, which needs the token; gunicorn's own port, from loopback, does not."""
    bearer = {"Authorization": f"Bearer {STATUS_TOKEN}"}
    for path in ("/status", "/status/", "/status/order/x", "/STATUS", "/status?x=1"):
        for headers in ({}, bearer):
            response, body, _ = get(DOMAIN, stack.nginx.https_port, path, stack.bundle, headers=headers)
            if path == "/STATUS":  # not the page: the relay's ACME 404
                assert response.status == 404 and b"relay.example.test" not in body
                continue
            assert response.status == 403, (path, response.status, body[:200])
            assert b"Jackdaw" not in body, "nginx's own refusal: the relay never saw it"

    edited = Nginx(tmp_path / "nginx-allowed", DOMAIN, f"127.0.0.1:{stack.relay.port}", stack.cert_dir,
                   edit=_operators_allowed)
    with edited:
        response, body, _ = get(DOMAIN, edited.https_port, "/status", stack.bundle)
        assert (response.status, body) == (404, b"Not Found\n"), "forwarded by nginx: not an insider"
        response, body, _ = get(DOMAIN, edited.https_port, "/status",
                                stack.bundle, headers={"Authorization": "Bearer not-the-token-at-all"})
        assert response.status == 404
        response, body, _ = get(DOMAIN, edited.https_port, "/status", stack.bundle, headers=bearer)
        assert response.status == 200 and response.headers["Content-Security-Policy"].startswith("default-src")
        page = body.decode()
        assert "Relay certificate" in page and "days left" in page and DOMAIN in page

    # the operator on the host: gunicorn's own port, from loopback, no token
    serial = format(leaf_of(stack.cert_dir / "fullchain.pem").serial_number, "x")
    with chromium(tmp_path / "chromium") as driver:
        driver.get(f"{stack.relay.url}/status")
        card = driver.find_element(By.ID, "relay-certificate").text
        assert serial in card and "days left" in card and "placeholder" not in card
        full_page_screenshot(driver, tmp_path / "status-nginx-stack.png")
