"""The relay's HTTP-01 fetch against hostile or odd web servers: real sockets, real BIND.

Names resolve through the test BIND (tests/integration/conftest.py): *.ok.example.test ->
127.0.0.1, *.tls.example.test -> 127.0.0.3, metadata.example.test -> 169.254.169.254 (and
mapped-metadata to its IPv4-mapped AAAA form), mixed.example.test -> both 169.254.169.254 and
127.0.0.1. Web servers are threads on loopback addresses; the validator is called directly.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from jackdaw.jobs import JobKind
from jackdaw.models import EabKey
from jackdaw.ra.policy import redirect_refusal
from jackdaw.va import http01
from jackdaw.va.http01 import MAX_BODY, HTTP01Validator, ValidationResult
from tests.integration.conftest import running_app
from tests.testbed import Bind

TOKEN = "tok"
KEYAUTH = "tok.Jvr0fWOu0Gw1kRFOLGhVQYN6ZpbUyYZqsCsHKRVz-xM"
CHALLENGE_PATH = f"/.well-known/acme-challenge/{TOKEN}"
NAME = "www.ok.example.test"
ERR = "urn:ietf:params:acme:error:"

Handler = BaseHTTPRequestHandler
Route = Callable[[Handler], None]


# --- a programmable web server ------------------------------------------------------------------


class Web:
    """HTTP (or HTTPS with `tls`) on host:port; `routes` maps a request path to what it does."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[tuple[str, str]] = []  # (path, Host header)
        self.headers: list[dict[str, str]] = []
        self.sni: list[str | None] = []
        self.sent = 0  # body bytes written by endless routes
        self.done = threading.Event()  # an endless or dripping route stopped writing
        web = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                web.hits.append((self.path, self.headers.get("Host", "")))
                web.headers.append(dict(self.headers.items()))
                route = web.routes.get(self.path)
                if route is None:
                    send(self, 404, b"not found")
                else:
                    route(self)
                self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, port), H)
        self.httpd.daemon_threads = True
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: self.sni.append(name)  # type: ignore[assignment,misc]
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.host = host
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        return [path for path, _ in self.hits]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def send(h: Handler, status: int, body: bytes, **headers: str) -> None:
    h.send_response(status)
    h.send_header("Content-Length", str(len(body)))
    for k, v in headers.items():
        h.send_header(k.replace("_", "-"), v)
    h.end_headers()
    h.wfile.write(body)


def serve(body: str | bytes, status: int = 200) -> Route:
    data = body.encode() if isinstance(body, str) else body
    return lambda h: send(h, status, data)


def redirect(location: str, status: int = 302) -> Route:
    return lambda h: send(h, status, b"", Location=location)


def endless(web: Web, chunked: bool) -> Route:
    """A 200 that never ends: Content-Length 1 GiB, or chunked without a last chunk."""
    block = b"A" * 65536
    frame = b"%x\r\n" % len(block) + block + b"\r\n"

    def route(h: Handler) -> None:
        h.send_response(200)
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(1 << 30))
        h.end_headers()
        try:
            while True:
                h.wfile.write(frame if chunked else block)
                web.sent += len(block)
        except OSError:
            pass
        finally:
            web.done.set()

    return route


def drip(web: Web, body: bytes, headers_too: bool, interval: float = 0.25) -> Route:
    """Send the response one byte per `interval`: every single read is quick, the whole is not."""

    def route(h: Handler) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
        try:
            if not headers_too:
                h.wfile.write(head)
            for i in range(len(head) + len(body) if headers_too else len(body)):
                byte = (head + body)[i : i + 1] if headers_too else body[i : i + 1]
                h.wfile.write(byte)
                time.sleep(interval)
        except OSError:
            pass
        finally:
            web.done.set()
        h.close_connection = True

    return route


@pytest.fixture
def web() -> Iterator[Web]:
    server = Web()
    yield server
    server.close()


@pytest.fixture
def make_validator(bind: Bind, web: Web) -> Callable[..., HTTP01Validator]:
    def make(**overrides: Any) -> HTTP01Validator:
        fields: dict[str, Any] = {
            "port": web.port, "timeout": 2.0, "retries": 1, "retry_delay": 0.0,
            "resolver": bind.nameserver, "allow_loopback": True,
        }
        fields.update(overrides)
        return HTTP01Validator(**fields)

    return make


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection the validator opens (address, port)."""
    calls: list[tuple[str, int]] = []
    real = http01._connect

    def spy(address: str, port: int, timeout: float) -> socket.socket:
        calls.append((address, port))
        return real(address, port, timeout)

    monkeypatch.setattr(http01, "_connect", spy)
    return calls


def failed(result: ValidationResult, code: str, *detail: str) -> str:
    assert result.problem is not None, "validation passed"
    doc = result.problem.to_json()
    assert doc["type"] == ERR + code, doc
    assert doc["identifier"] == {"type": "dns", "value": NAME} or code == "dns", doc
    for part in detail:
        assert part in doc["detail"], doc
    return str(doc["detail"])


def url(host: str, port: int, path: str, scheme: str = "http") -> str:
    return f"{scheme}://{host}:{port}{path}"


# --- redirects -----------------------------------------------------------------------------------


def test_redirect_chain_of_three(web: Web, make_validator: Callable[..., HTTP01Validator]) -> None:
    p = web.port
    web.routes[CHALLENGE_PATH] = redirect(url("hop1.ok.example.test", p, "/one"), 301)
    web.routes["/one"] = redirect(url("hop2.ok.example.test", p, "/two?x=1"), 307)
    web.routes["/two?x=1"] = redirect("/three", 308)  # relative: same host
    web.routes["/three"] = serve(KEYAUTH + "\n")

    result = make_validator().validate(NAME, TOKEN, KEYAUTH)

    assert result.ok, result.problem
    assert web.hits == [
        (CHALLENGE_PATH, f"{NAME}:{p}"),
        ("/one", f"hop1.ok.example.test:{p}"),
        ("/two?x=1", f"hop2.ok.example.test:{p}"),
        ("/three", f"hop2.ok.example.test:{p}"),
    ]
    assert result.records == [  # one record per hop, each resolved on its own
        {"url": url(host, p, path), "hostname": host, "port": str(p),
         "addressesResolved": ["127.0.0.1"], "addressUsed": "127.0.0.1"}
        for host, path in [(NAME, CHALLENGE_PATH), ("hop1.ok.example.test", "/one"),
                           ("hop2.ok.example.test", "/two?x=1"), ("hop2.ok.example.test", "/three")]
    ]
    for headers in web.headers:
        assert headers["Accept-Encoding"] == "identity"
        assert headers["User-Agent"] == "jackdaw-va"


@pytest.mark.parametrize(("hops", "passes"), [pytest.param(10, True, id="10-ok"), pytest.param(11, False, id="11")])
def test_redirect_limit(web: Web, make_validator: Callable[..., HTTP01Validator], hops: int, passes: bool) -> None:
    web.routes[CHALLENGE_PATH] = redirect(url("r1.ok.example.test", web.port, "/r/1"))
    for i in range(1, hops):
        web.routes[f"/r/{i}"] = redirect(url(f"r{i + 1}.ok.example.test", web.port, f"/r/{i + 1}"))
    web.routes[f"/r/{hops}"] = serve(KEYAUTH)

    result = make_validator().validate(NAME, TOKEN, KEYAUTH)

    if passes:
        assert result.ok, result.problem
        assert len(result.records) == hops + 1
    else:
        failed(result, "unauthorized", "Too many redirects")
        assert f"/r/{hops}" not in web.paths()  # the 11th redirect is not followed
        assert len(result.records) == hops


@pytest.mark.parametrize(
    "location",
    [
        pytest.param("http://127.0.0.1:{port}/x", id="v4-literal"),
        pytest.param("http://[::1]:{port}/x", id="v6-literal"),
        pytest.param("http://[::ffff:127.0.0.1]:{port}/x", id="v4-mapped-literal"),
        pytest.param("http://169.254.169.254/latest/meta-data/", id="metadata-literal"),
    ],
)
def test_redirect_to_ip_literal_refused(web: Web, make_validator: Callable[..., HTTP01Validator],
                                        connects: list[tuple[str, int]], location: str) -> None:
    web.routes[CHALLENGE_PATH] = redirect(location.format(port=web.port))
    web.routes["/x"] = serve(KEYAUTH)
    result = make_validator().validate(NAME, TOKEN, KEYAUTH)
    failed(result, "unauthorized", "Invalid redirect", "IP address")
    assert web.paths() == [CHALLENGE_PATH]
    assert connects == [("127.0.0.1", web.port)]  # only the first hop


def test_redirect_to_forbidden_port_refused(web: Web, make_validator: Callable[..., HTTP01Validator]) -> None:
    other = Web()  # would answer correctly, but its port is neither 80, 443 nor CHALLENGE_HTTP_PORT
    try:
        other.routes["/x"] = serve(KEYAUTH)
        web.routes[CHALLENGE_PATH] = redirect(url("elsewhere.ok.example.test", other.port, "/x"))
        result = make_validator().validate(NAME, TOKEN, KEYAUTH)
        failed(result, "unauthorized", f"port {other.port} is not one of 80, 443, {web.port}")
        assert other.hits == []
    finally:
        other.close()


@pytest.mark.parametrize(("allowed", "binding", "followed"), [
    pytest.param(["ok.example.test"], None, True, id="inside-ALLOWED_DOMAINS"),
    pytest.param(["www.ok.example.test"], None, False, id="outside-ALLOWED_DOMAINS"),
    pytest.param([], EabKey(name="team", allow=["*.ok.example.test"]), True, id="inside-the-keys-patterns"),
    pytest.param([], EabKey(name="team", allow=["www.ok.example.test"]), False, id="outside-the-keys-patterns"),
])
def test_redirects_only_to_names_the_requester_could_order(
        web: Web, make_validator: Callable[..., HTTP01Validator], allowed: list[str], binding: EabKey | None,
        followed: bool) -> None:
    """The relay fetches from inside: a redirect must not reach a host the requester has no
    business with (an internal admin page on an allowed port)."""
    web.routes[CHALLENGE_PATH] = redirect(url("intranet.ok.example.test", web.port, "/x"))
    web.routes["/x"] = serve(KEYAUTH)
    result = make_validator().validate(NAME, TOKEN, KEYAUTH, partial(redirect_refusal, allowed, binding))
    if followed:
        assert result.ok, result.problem
    else:
        detail = failed(result, "unauthorized", "Invalid redirect", "outside this requester's names")
        assert "intranet.ok.example.test" in detail
        assert web.paths() == [CHALLENGE_PATH]


@pytest.mark.parametrize(
    ("route", "detail"),
    [
        pytest.param(lambda: redirect("ftp://files.ok.example.test/x"), "scheme 'ftp'", id="ftp"),
        pytest.param(lambda: (lambda h: send(h, 302, b"")), "without Location", id="no-location"),
        pytest.param(lambda: redirect("/x", status=300), "HTTP 300", id="300-not-followed"),
        pytest.param(lambda: serve("", status=304), "HTTP 304", id="304-not-followed"),
    ],
)
def test_other_bad_redirects(web: Web, make_validator: Callable[..., HTTP01Validator],
                             route: Callable[[], Route], detail: str) -> None:
    web.routes[CHALLENGE_PATH] = route()
    web.routes["/x"] = serve(KEYAUTH)
    failed(make_validator().validate(NAME, TOKEN, KEYAUTH), "unauthorized", detail)
    assert web.paths() == [CHALLENGE_PATH]


# --- https redirect hops ----------------------------------------------------------------------


@pytest.fixture
def tls_web(web: Web) -> Iterator[Web]:
    """HTTPS on 127.0.0.3 at the same port as `web` (so CHALLENGE_HTTP_PORT), with a cert from a
    trustme CA the validator knows nothing about."""
    ca = trustme.CA()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("*.tls.example.test").configure_cert(ctx)
    server = Web("127.0.0.3", web.port, tls=ctx)
    yield server
    server.close()


def test_redirect_to_https(web: Web, tls_web: Web, make_validator: Callable[..., HTTP01Validator]) -> None:
    """Like Boulder, the https hop does not verify the certificate: the body proves control."""
    host = "secure.tls.example.test"
    web.routes[CHALLENGE_PATH] = redirect(url(host, web.port, "/secure", scheme="https"))
    tls_web.routes["/secure"] = serve(KEYAUTH)

    result = make_validator().validate(NAME, TOKEN, KEYAUTH)

    assert result.ok, result.problem
    assert tls_web.sni == [host]
    assert tls_web.hits == [("/secure", f"{host}:{web.port}")]
    assert result.records[-1] == {
        "url": f"https://{host}:{web.port}/secure", "hostname": host, "port": str(web.port),
        "addressesResolved": ["127.0.0.3"], "addressUsed": "127.0.0.3",
    }


def test_https_hop_to_a_plain_http_server(web: Web, make_validator: Callable[..., HTTP01Validator]) -> None:
    web.routes[CHALLENGE_PATH] = redirect(url("www.ok.example.test", web.port, "/x", scheme="https"))
    web.routes["/x"] = serve(KEYAUTH)
    failed(make_validator().validate(NAME, TOKEN, KEYAUTH), "connection", "TLS error")


# --- bounded body, one deadline ---------------------------------------------------------------


@pytest.mark.parametrize("chunked", [pytest.param(False, id="content-length-1GiB"),
                                     pytest.param(True, id="chunked-endless")])
def test_endless_body_costs_nothing(web: Web, make_validator: Callable[..., HTTP01Validator], chunked: bool) -> None:
    web.routes[CHALLENGE_PATH] = endless(web, chunked)
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = make_validator(timeout=5.0).validate(NAME, TOKEN, KEYAUTH)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    failed(result, "unauthorized", f"larger than {MAX_BODY} bytes")
    assert elapsed < 1.0
    assert peak < 1 << 20, f"peak {peak} bytes while reading an endless body"
    assert web.done.wait(5), "the server is still writing: the connection was not closed"
    assert web.sent < 64 << 20  # what the kernel buffered before the close, not the gigabyte


@pytest.mark.parametrize("headers_too", [pytest.param(False, id="body"), pytest.param(True, id="status-and-headers")])
def test_slow_drip_fails_at_the_deadline(web: Web, make_validator: Callable[..., HTTP01Validator],
                                         headers_too: bool) -> None:
    web.routes[CHALLENGE_PATH] = drip(web, KEYAUTH.encode(), headers_too)  # 4 bytes/s: ~25 s to finish
    started = time.monotonic()
    result = make_validator(timeout=1.0).validate(NAME, TOKEN, KEYAUTH)
    elapsed = time.monotonic() - started
    failed(result, "connection", "timeout after 1 s")
    assert 0.9 <= elapsed < 1.6


def test_deadline_covers_all_redirects(web: Web, make_validator: Callable[..., HTTP01Validator]) -> None:
    """Each hop is quick, but together they pass the deadline: the attempt ends there."""

    def slow_redirect(i: int) -> Route:
        def route(h: Handler) -> None:
            time.sleep(0.3)
            send(h, 302, b"", Location=url(f"s{i + 1}.ok.example.test", web.port, f"/s/{i + 1}"))
        return route

    web.routes[CHALLENGE_PATH] = slow_redirect(0)
    for i in range(1, 10):
        web.routes[f"/s/{i}"] = slow_redirect(i)
    started = time.monotonic()
    result = make_validator(timeout=1.0).validate(NAME, TOKEN, KEYAUTH)
    elapsed = time.monotonic() - started
    failed(result, "connection", "timeout after 1 s")
    assert 0.9 <= elapsed < 1.6
    assert len(web.hits) <= 4


def test_server_that_never_answers(web: Web, make_validator: Callable[..., HTTP01Validator]) -> None:
    """TCP connects (the listen backlog accepts it) but no byte ever comes back."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        result = make_validator(port=silent.getsockname()[1], timeout=1.0).validate(NAME, TOKEN, KEYAUTH)
        elapsed = time.monotonic() - started
    failed(result, "connection", "timeout after 1 s")
    assert 0.9 <= elapsed < 1.6


# --- address policy ---------------------------------------------------------------------------


def test_loopback_refused_unless_allowed(web: Web, make_validator: Callable[..., HTTP01Validator],
                                         connects: list[tuple[str, int]]) -> None:
    web.routes[CHALLENGE_PATH] = serve(KEYAUTH)
    result = make_validator(allow_loopback=False).validate(NAME, TOKEN, KEYAUTH)
    failed(result, "connection", "address 127.0.0.1 is not allowed (loopback)")
    assert connects == [] and web.hits == []
    assert result.records == [{"url": url(NAME, web.port, CHALLENGE_PATH), "hostname": NAME,
                               "port": str(web.port), "addressesResolved": ["127.0.0.1"]}]
    # the same server is fine once the operator allows loopback, or lists the network
    assert make_validator(allow_loopback=True).validate(NAME, TOKEN, KEYAUTH).ok
    nets = (ipaddress.ip_network("127.0.0.0/8"),)
    assert make_validator(allow_loopback=False, allowed_networks=nets).validate(NAME, TOKEN, KEYAUTH).ok


@pytest.mark.parametrize(
    ("name", "address"),
    [pytest.param("metadata.example.test", "169.254.169.254", id="a-record"),
     pytest.param("mapped-metadata.example.test", "::ffff:169.254.169.254", id="v4-mapped-aaaa")],
)
def test_link_local_name_refused_without_connecting(make_validator: Callable[..., HTTP01Validator],
                                                    connects: list[tuple[str, int]], name: str,
                                                    address: str) -> None:
    result = make_validator().validate(name, TOKEN, KEYAUTH)  # loopback allowed: link-local still is not
    assert result.problem is not None
    doc = result.problem.to_json()
    assert doc["type"] == ERR + "connection"
    assert f"address {address} is not allowed (link-local)" in doc["detail"]
    assert connects == []
    assert "addressUsed" not in result.records[0]


def test_redirect_to_link_local_name_refused(web: Web, make_validator: Callable[..., HTTP01Validator],
                                             connects: list[tuple[str, int]]) -> None:
    web.routes[CHALLENGE_PATH] = redirect("http://metadata.example.test/latest/meta-data/")
    failed(make_validator().validate(NAME, TOKEN, KEYAUTH), "connection",
           "address 169.254.169.254 is not allowed (link-local)")
    assert connects == [("127.0.0.1", web.port)]


def test_forbidden_addresses_of_a_name_are_skipped(web: Web, make_validator: Callable[..., HTTP01Validator],
                                                   connects: list[tuple[str, int]]) -> None:
    name = "mixed.example.test"
    web.routes[CHALLENGE_PATH] = serve(KEYAUTH)
    result = make_validator().validate(name, TOKEN, KEYAUTH)
    assert result.ok, result.problem
    assert connects == [("127.0.0.1", web.port)]
    [record] = result.records
    assert sorted(record["addressesResolved"]) == ["127.0.0.1", "169.254.169.254"]
    assert record["addressUsed"] == "127.0.0.1"


def test_allowed_networks_let_link_local_through(make_validator: Callable[..., HTTP01Validator],
                                                 monkeypatch: pytest.MonkeyPatch, web: Web) -> None:
    calls: list[str] = []

    def refuse(address: str, port: int, timeout: float) -> socket.socket:
        calls.append(address)
        raise ConnectionRefusedError  # nothing is sent toward a real 169.254.169.254

    monkeypatch.setattr(http01, "_connect", refuse)
    nets = (ipaddress.ip_network("169.254.169.254/32"),)
    result = make_validator(allowed_networks=nets).validate("metadata.example.test", TOKEN, KEYAUTH)
    assert result.problem is not None and "connection refused" in result.problem.detail
    assert calls == ["169.254.169.254"]


# --- wiring ---------------------------------------------------------------------------------------


def test_settings_reach_the_validator(tmp_path: Path) -> None:
    with running_app(f"sqlite:///{tmp_path / 'j.db'}", tmp_path / "data", CHALLENGE_ALLOW_LOOPBACK="false",
                     CHALLENGE_ALLOWED_NETWORKS="169.254.10.0/24") as app:
        job = app.extensions["jackdaw"].queue.handlers[JobKind.VALIDATE].handler
        validator: HTTP01Validator = job.validator
    assert validator.allow_loopback is False
    assert validator.allowed_networks == (ipaddress.ip_network("169.254.10.0/24"),)
