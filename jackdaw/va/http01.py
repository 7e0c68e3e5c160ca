"""The relay's own HTTP-01 check (RFC 8555 §8.3), made from inside the network.

Modelled on Boulder's va/http.go. One attempt:

- resolves the name through the configured resolver (never the system's), drops addresses the
  `AddressPolicy` forbids (loopback, link-local such as 169.254.169.254, multicast, unspecified,
  and their IPv4-mapped / NAT64 IPv6 forms) before any connection is made;
- GETs ``http://<name>:CHALLENGE_HTTP_PORT/.well-known/acme-challenge/<token>`` from each allowed
  address in turn (the next one only after a connection failure), the name as Host and SNI;
- follows at most `MAX_REDIRECTS` redirects, only to http/https URLs on port 80, 443 or
  CHALLENGE_HTTP_PORT whose host is a name (never an IP literal); every hop is resolved and
  policed again and gets its own ``validationRecord`` entry;
- reads at most `MAX_BODY` bytes of a 200 body (never decoded: ``Accept-Encoding: identity``),
  then closes the connection, whatever the server still wants to send;
- has one deadline (CHALLENGE_TIMEOUT) for everything: lookups, connects, TLS handshakes, all
  redirects and all reads. A watchdog shuts the socket down when it passes, so a server that
  drips one byte a second cannot stretch an attempt the way it would stretch per-read timeouts.

Runs in a job thread, never in a request thread.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urljoin, urlsplit

import dns.exception

from jackdaw.dns.resolver import DNSLookupError, is_ip, make_resolver, resolve_addresses
from jackdaw.protocol import problems

log = logging.getLogger(__name__)

#: bytes of a 200 body read at most: a key authorization is 87 characters; the rest is room for
#: trailing whitespace. One byte more is read to tell "exactly this long" from "longer".
MAX_BODY = 1024
#: redirects followed per attempt (Boulder's maxRedirect)
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "jackdaw-va"
DEFAULT_PORTS = {"http": 80, "https": 443}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


# --- address policy ------------------------------------------------------------------------------

_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")  # "this host on this network": Linux connects to itself
_CLASS_E = ipaddress.IPv4Network("240.0.0.0/4")  # reserved, includes 255.255.255.255
#: IPv6 prefixes whose low 32 bits are an IPv4 address: NAT64 well-known (RFC 6052) and local-use
#: (RFC 8215), IPv4-translated (RFC 2765), IPv4-compatible (deprecated, RFC 4291)
_LOW_32_BITS_IPV4 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"),
                     ipaddress.IPv6Network("::ffff:0:0:0/96"), ipaddress.IPv6Network("::/96"))
#: cloud instance-metadata services outside the link-local range (AWS IMDS over IPv6, Alibaba)
_METADATA = (ipaddress.IPv6Network("fd00:ec2::254/128"), ipaddress.IPv4Network("100.100.100.200/32"))


def embedded_ipv4(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (``::ffff:a.b.c.d``, ``64:ff9b::a.b.c.d``,
    ``::a.b.c.d``, ``2002:AABB:CCDD::`` (6to4), ...), so that every form is judged as the IPv4."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip.is_unspecified or ip.is_loopback:
            return None  # "::" and "::1" are IPv6's own, not IPv4-compatible forms
        if any(ip in net for net in _LOW_32_BITS_IPV4):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_category(ip: Address) -> str | None:
    """Why an address is special ("loopback", "link-local", ...), or None for an ordinary one.

    An IPv6 form of an IPv4 address is judged as that IPv4 address (Python 3.11's
    ``IPv6Address("::ffff:127.0.0.1").is_loopback`` is False). Private RFC 1918 / ULA ranges are
    ordinary here: validating hosts on the internal network is the relay's job.
    """
    target = embedded_ipv4(ip) or ip
    if target.is_unspecified or (isinstance(target, ipaddress.IPv4Address) and target in _THIS_NETWORK):
        return "unspecified"
    if target.is_loopback:
        return "loopback"
    if target.is_link_local:
        return "link-local"
    if target.is_multicast:
        return "multicast"
    if isinstance(target, ipaddress.IPv4Address) and target in _CLASS_E:
        return "reserved"
    if any(target in net for net in _METADATA):
        return "metadata service"
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which resolved addresses the validator may connect to.

    Special addresses (see `address_category`) are refused unless ``allow_loopback`` (loopback
    only) or one of ``allowed_networks`` (any category; the IPv4 form of a mapped address counts)
    lets them through.
    """

    allow_loopback: bool = False
    allowed_networks: tuple[Network, ...] = ()

    def refusal(self, address: str) -> str | None:
        """The category that forbids connecting to ``address``, or None if it is allowed."""
        ip = ipaddress.ip_address(address)
        category = address_category(ip)
        if category is None:
            return None
        forms: list[Address] = [ip]
        v4 = embedded_ipv4(ip)
        if v4 is not None:
            forms.append(v4)
        if any(form in net for form in forms for net in self.allowed_networks):
            return None
        if category == "loopback" and self.allow_loopback:
            return None
        return category


# --- redirect targets ----------------------------------------------------------------------------


#: why a redirect to a host is not followed, or None to follow it
RedirectPolicy = Callable[[str], str | None]


class BadRedirect(ValueError):
    """A redirect the validator will not follow; the message says why."""


_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Target:
    """One hop: what to fetch (``path`` includes any query), and the URL that names it."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def netloc(self) -> str:
        """``host`` or ``host:port`` when the port is not the scheme's default (the Host header)."""
        return self.host if self.port == DEFAULT_PORTS[self.scheme] else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}"


def _redirect_host(hostname: str | None) -> str:
    if not hostname:
        raise BadRedirect("no host")
    if is_ip(hostname):
        raise BadRedirect(f"host {hostname} is an IP address; only names are followed")
    try:
        host = hostname.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise BadRedirect(f"host {hostname!r} is not a valid name") from None
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise BadRedirect(f"host {hostname!r} is not a valid name")
    if labels[-1].isdigit():  # 2130706433, 127.1: numeric forms some resolvers read as addresses
        raise BadRedirect(f"host {hostname} is an IP address; only names are followed")
    return host


def redirect_target(current_url: str, location: str, allowed_ports: frozenset[int]) -> Target:
    """Where a redirect from ``current_url`` to ``location`` (maybe relative) leads.

    Boulder's rules: http or https only; an explicit port must be one of ``allowed_ports``
    (80, 443 and CHALLENGE_HTTP_PORT); the host must be a name, not an IP literal. The fragment
    is dropped; characters not allowed in a request-target are percent-encoded.
    """
    parts = urlsplit(urljoin(current_url, location.strip()))
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise BadRedirect(f"scheme {scheme or '(none)'!r} is neither http nor https")
    host = _redirect_host(parts.hostname)
    try:
        port = DEFAULT_PORTS[scheme] if parts.port is None else parts.port
    except ValueError:
        raise BadRedirect("invalid port") from None
    if port not in allowed_ports:
        ports = ", ".join(str(p) for p in sorted(allowed_ports))
        raise BadRedirect(f"port {port} is not one of {ports}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, host, port, quote(path, safe="/?&=%:@!$'()*+,;~-._"))


# --- bounded reading under one deadline -------------------------------------------------------


class _Readable(Protocol):
    def read(self, amt: int) -> bytes: ...


def read_capped(stream: _Readable, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of ``stream``: enough to tell a body over ``limit`` apart."""
    chunks: list[bytes] = []
    left = limit + 1
    while left > 0:
        chunk = stream.read(min(left, 4096))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0


class _Watchdog:
    """Shuts a connection down at the deadline, wherever the fetch is blocked (TLS handshake,
    headers, body), so per-read socket timeouts cannot add up past it.

    It holds its own duplicate of the descriptor: shutting down the twin ends the connection for
    the fetching thread too, and the twin is never closed behind the watchdog's back, so a timer
    firing late can never hit a descriptor number the kernel has handed out again.
    """

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._twin = sock.dup()
        self._lock = threading.Lock()
        self._closed = False
        self.fired = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self.fired = True
            try:
                self._twin.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._closed = True
            self._twin.close()


def _tls_context() -> ssl.SSLContext:
    # Deliberately no certificate or name verification, as Boulder (va/http.go:
    # InsecureSkipVerify) and RFC 8555 §8.3 have it: an https:// redirect target is a server that
    # may not have a valid certificate yet - getting one is why it runs an ACME client. Control of
    # the name is proven by the key authorization in the body, not by TLS. Used for nothing else.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


_TLS = _tls_context()


def _connect(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to an address the policy allowed (module-level so tests can watch it)."""
    return socket.create_connection((address, port), timeout=timeout)


@dataclass(frozen=True)
class _Answer:
    status: int
    location: str | None
    body: bytes  # read only for 200


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed without a response"
    if isinstance(exc, http.client.HTTPException):
        return f"malformed HTTP response ({type(exc).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__


# --- the validator -------------------------------------------------------------------------------


@dataclass
class ValidationResult:
    problem: problems.AcmeProblem | None
    #: the deciding attempt's validationRecord entries: one per connection tried or hop refused
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class HTTP01Validator:
    port: int = 80
    #: seconds for one whole attempt: lookups, connects, redirects and reads together
    timeout: float = 5.0
    retries: int = 3
    retry_delay: float = 2.0
    resolver: str | None = None
    allow_loopback: bool = False
    allowed_networks: tuple[Network, ...] = ()

    @property
    def policy(self) -> AddressPolicy:
        return AddressPolicy(self.allow_loopback, self.allowed_networks)

    @property
    def redirect_ports(self) -> frozenset[int]:
        return frozenset({80, 443, self.port})

    def validate(self, name: str, token: str, key_authorization: str,
                 may_redirect: RedirectPolicy | None = None) -> ValidationResult:
        """One attempt; the validation job spaces ``retries`` attempts ``retry_delay`` apart.
        ``may_redirect(host)`` says why a redirect to ``host`` is not followed (the requester's
        name policy: the relay fetches from inside, so a redirect must not reach any host)."""
        result = ValidationResult(problem=None)
        result.problem = self._attempt(name, token, key_authorization, result.records, may_redirect)
        return result

    def _attempt(
        self, name: str, token: str, expected: str, records: list[dict[str, Any]],
        may_redirect: RedirectPolicy | None,
    ) -> problems.AcmeProblem | None:
        deadline = Deadline(self.timeout)
        target = Target("http", name, self.port, f"/.well-known/acme-challenge/{token}")
        for redirects in range(MAX_REDIRECTS + 1):
            answer = self._hop(target, name, deadline, records)
            if isinstance(answer, problems.AcmeProblem):
                return answer
            if answer.status in REDIRECT_STATUSES:
                if redirects == MAX_REDIRECTS:
                    return problems.Unauthorized(
                        f"Too many redirects: {target.url} redirects again after {MAX_REDIRECTS}", identifier=name
                    )
                if not answer.location:
                    return problems.Unauthorized(
                        f"Invalid redirect from {target.url}: HTTP {answer.status} without Location", identifier=name
                    )
                try:
                    following = redirect_target(target.url, answer.location, self.redirect_ports)
                    refusal = may_redirect(following.host) if may_redirect is not None else None
                    if refusal is not None:
                        raise BadRedirect(refusal)
                except BadRedirect as exc:
                    shown = answer.location[:200]
                    return problems.Unauthorized(
                        f"Invalid redirect from {target.url} to {shown!r}: {exc}", identifier=name
                    )
                target = following
                log.debug("HTTP-01 for %s: following redirect to %s", name, target.url)
                continue
            if answer.status != 200:
                return problems.Unauthorized(f"Invalid response from {target.url}: HTTP {answer.status}",
                                             identifier=name)
            return _judge_body(target.url, answer.body, expected, name)
        raise AssertionError("unreachable: the loop returns")  # pragma: no cover

    def _timeout(self, url: str, identifier: str) -> problems.AcmeProblem:
        return problems.Connection(f"Fetching {url}: timeout after {self.timeout:g} s", identifier=identifier)

    def _hop(
        self, target: Target, identifier: str, deadline: Deadline, records: list[dict[str, Any]]
    ) -> _Answer | problems.AcmeProblem:
        """Resolve, police and fetch one URL, trying each allowed address after connection failures."""
        if deadline.expired():
            return self._timeout(target.url, identifier)
        try:
            resolver = make_resolver(self.resolver)
            resolver.lifetime = min(resolver.lifetime, deadline.remaining())
            resolver.timeout = min(resolver.timeout, resolver.lifetime)
            addresses = resolve_addresses(target.host, resolver)
        except (DNSLookupError, dns.exception.DNSException, OSError) as exc:
            return problems.DNS(f"DNS problem looking up {target.host}: {exc}", identifier=identifier)
        base: dict[str, Any] = {
            "url": target.url, "hostname": target.host, "port": str(target.port), "addressesResolved": addresses,
        }
        refused = [(a, reason) for a in addresses if (reason := self.policy.refusal(a)) is not None]
        allowed = [a for a in addresses if a not in {r for r, _ in refused}]
        if not allowed:
            records.append(base)  # no addressUsed: nothing was connected to
            address, reason = refused[0]
            return problems.Connection(
                f"Fetching {target.url}: address {address} is not allowed ({reason})", identifier=identifier
            )
        if refused:
            log.info("HTTP-01 for %s: skipping %s", target.host, ", ".join(f"{a} ({r})" for a, r in refused))
        answer: _Answer | problems.AcmeProblem = self._timeout(target.url, identifier)
        for address in allowed:
            if deadline.expired():
                return self._timeout(target.url, identifier)
            records.append({**base, "addressUsed": address})
            answer = self._fetch(target, address, deadline, identifier)
            if not isinstance(answer, problems.Connection):
                return answer  # an answer (right or wrong) ends the hop; only connection failures try the next
        return answer

    def _fetch(
        self, target: Target, address: str, deadline: Deadline, identifier: str
    ) -> _Answer | problems.AcmeProblem:
        sock: socket.socket | None = None
        watchdog: _Watchdog | None = None
        response: http.client.HTTPResponse | None = None
        try:
            sock = _connect(address, target.port, deadline.remaining())
            watchdog = _Watchdog(sock, deadline.remaining())
            if target.scheme == "https":
                sock = _TLS.wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
            sock.settimeout(max(deadline.remaining(), 0.001))
            if isinstance(sock, ssl.SSLSocket):
                sock.do_handshake()
            conn = http.client.HTTPConnection(target.host, target.port)
            conn.sock = sock  # connected above, to the address the policy allowed
            conn.putrequest("GET", target.path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", target.netloc)
            conn.putheader("User-Agent", USER_AGENT)
            conn.putheader("Accept", "*/*")
            conn.putheader("Accept-Encoding", "identity")
            conn.putheader("Connection", "close")
            conn.endheaders()
            response = conn.getresponse()
            body = read_capped(response, MAX_BODY) if response.status == 200 else b""
            if watchdog.fired:  # the shutdown may look like a clean end of the body
                return self._timeout(target.url, identifier)
            return _Answer(response.status, response.msg.get("Location"), body)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if (watchdog is not None and watchdog.fired) or deadline.expired() or isinstance(exc, TimeoutError):
                return self._timeout(target.url, identifier)
            return problems.Connection(f"Fetching {target.url}: {_reason(exc)}", identifier=identifier)
        finally:
            if watchdog is not None:
                watchdog.close()
            if response is not None:
                response.close()
            if sock is not None:
                sock.close()


def _judge_body(url: str, body: bytes, expected: str, identifier: str) -> problems.AcmeProblem | None:
    """RFC 8555 §8.3: the body is the key authorization; trailing whitespace is ignored."""
    if len(body) > MAX_BODY:
        return problems.Unauthorized(f"Response from {url} is larger than {MAX_BODY} bytes", identifier=identifier)
    got = body.decode("utf-8", "replace").rstrip()
    if got != expected:
        # never the body itself: the relay fetches from inside the network, and an answer echoed
        # to whoever asked would make HTTP-01 a way to read internal pages
        digest = hashlib.sha256(body).hexdigest()[:16]
        return problems.IncorrectResponse(
            f"The key authorization file from {url} does not match: got {len(body)} bytes (sha256 {digest}...)",
            identifier=identifier)
    return None
