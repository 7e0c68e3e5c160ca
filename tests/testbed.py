"""A local ACME test bed: BIND (authoritative, RFC 2136 + TSIG) and Pebble, loopback only.

Not a test module: e2e tests, benchmarks and ``make demo`` import these helpers. Both classes
are context managers; a failed start stops what it started and raises with the log's tail.
Missing binaries raise (tests fail, never skip).
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn, Self

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import requests
import trustme

NAMED = "/usr/sbin/named"
PEBBLE = "/usr/bin/pebble"
START_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (racy by nature, fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_dns_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (DNS listens on both)."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


# resolved in the parent so the forked child only makes one foreign call (no dlopen locks)
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent() -> None:
    # The child gets SIGTERM when the thread that started it ends (pytest killed, Ctrl-C),
    # so no named/pebble outlives a crashed run. Start test beds from a long-lived thread.
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Process:
    """One background server process with a log file, stopped on exit no matter what."""

    name = "process"

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def _spawn(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        if not Path(argv[0]).exists():
            raise FileNotFoundError(f"{argv[0]} not found: install the Debian package first")
        self._log = open(self.log_path, "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            argv,
            cwd=self.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )

    def _wait_until(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    self._fail(f"exited with status {self.proc.returncode} before {what}")
                if ready():
                    return
                time.sleep(0.05)
            self._fail(f"not {what} after {START_TIMEOUT:.0f} s")
        except BaseException:  # Ctrl-C or a failed probe: never leave the server running
            self.stop()
            raise

    def _fail(self, why: str) -> NoReturn:
        self.stop()
        raise RuntimeError(f"{self.name} {why}; log {self.log_path}:\n{_tail(self.log_path)}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def start(self) -> Self:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Bind(_Process):
    """``named`` serving ``zones`` on 127.0.0.1:port, each updatable with one TSIG key.

    ``zones`` maps a zone name to extra zone-file lines relative to its origin, e.g.
    ``{"example.test": ["a 60 IN A 127.0.0.1"]}``. Every zone gets SOA, ``NS ns1.<zone>`` and
    ``ns1.<zone> A 127.0.0.1``, so propagation checks find this server (on ``port``, not 53).
    """

    name = "named"

    def __init__(
        self,
        workdir: Path,
        zones: dict[str, list[str]],
        port: int | None = None,
        key_name: str = "jackdaw-test",
    ) -> None:
        super().__init__(workdir)
        self.zones = {zone.rstrip(".").lower(): lines for zone, lines in zones.items()}
        self.port = port or free_dns_port()
        self.key_name = key_name
        self.key_secret = base64.b64encode(secrets.token_bytes(32)).decode()

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "DNS_PROVIDER": "rfc2136",
            "RFC2136_NAMESERVER": self.nameserver,
            "RFC2136_TSIG_KEY": self.key_name,
            "RFC2136_TSIG_SECRET": self.key_secret,
            "RFC2136_TSIG_ALGORITHM": "hmac-sha256",
        }

    def named_conf(self) -> str:
        d = self.workdir
        zones = "".join(
            f'zone "{zone}" {{ type primary; file "{d}/db.{zone}"; allow-update {{ key "{self.key_name}"; }}; }};\n'
            for zone in self.zones
        )
        # notify no: the NS records say 127.0.0.1:53, which is not us
        return f"""\
key "{self.key_name}" {{ algorithm hmac-sha256; secret "{self.key_secret}"; }};
controls {{ }};
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    dump-file "{d}/named.dump";
    statistics-file "{d}/named.stats";
    listen-on port {self.port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    dnssec-validation no;
    notify no;
}};
{zones}"""

    @staticmethod
    def zone_file(zone: str, lines: list[str]) -> str:
        extra = "".join(f"{line}\n" for line in lines)
        return f"""\
$ORIGIN {zone}.
$TTL 60
@ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 60
@ IN NS ns1.{zone}.
ns1 IN A 127.0.0.1
{extra}"""

    def start(self) -> Self:
        conf = self.workdir / "named.conf"
        conf.write_text(self.named_conf())
        for zone, lines in self.zones.items():
            (self.workdir / f"db.{zone}").write_text(self.zone_file(zone, lines))
        # Run as the invoking user (root in CI): named only drops privileges with -u, and
        # user "bind" could not write the zone journals in a root-owned temp dir.
        self._spawn([NAMED, "-g", "-c", str(conf), "-p", str(self.port)])
        self._wait_until(self._serves_all_zones, "answering SOA queries")
        return self

    def _serves_all_zones(self) -> bool:
        # a bad zone file leaves named running without it: fail now, not after the timeout
        if "not loaded due to errors" in self.log_path.read_text(errors="replace"):
            self._fail("could not load a zone")
        try:
            return all(self._query(zone, dns.rdatatype.SOA, 0.2).rcode() == dns.rcode.NOERROR for zone in self.zones)
        except (dns.exception.Timeout, OSError):
            return False

    def _query(self, name: str, rdtype: dns.rdatatype.RdataType, timeout: float = 2.0) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        return dns.query.udp(query, "127.0.0.1", timeout=timeout, port=self.port)

    def txt(self, name: str) -> list[str]:
        """TXT values served at ``name`` now (sorted), for "nothing left behind" checks."""
        response = self._query(name, dns.rdatatype.TXT)
        if response.rcode() == dns.rcode.NXDOMAIN:
            return []
        if response.rcode() != dns.rcode.NOERROR:
            raise RuntimeError(f"TXT {name}: {dns.rcode.to_text(response.rcode())}")
        return sorted(
            b"".join(rdata.strings).decode()
            for rrset in response.answer
            if rrset.rdtype == dns.rdatatype.TXT
            for rdata in rrset
        )


class Pebble(_Process):
    """Pebble with its own test CA for its HTTPS listeners; clients trust ``ca_pem``.

    ``nonce_reject`` is PEBBLE_WFE_NONCEREJECT (percent; Pebble's default chaos is 5).
    ``authz_reuse`` is PEBBLE_AUTHZREUSE (percent); None keeps Pebble's default (50).
    """

    name = "pebble"

    def __init__(
        self,
        workdir: Path,
        dns_port: int,
        *,
        http_port: int | None = None,
        tls_port: int | None = None,
        nonce_reject: int = 0,
        authz_reuse: int | None = None,
    ) -> None:
        super().__init__(workdir)
        self.dns_port = dns_port
        self.port = free_port()
        self.management_port = free_port()
        self.http_port = http_port or free_port()
        self.tls_port = tls_port or free_port()
        self.nonce_reject = nonce_reject
        self.authz_reuse = authz_reuse
        self.ca_pem = self.workdir / "ca.pem"

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def management_url(self) -> str:
        return f"https://127.0.0.1:{self.management_port}"

    def _write_certificates(self) -> tuple[Path, Path]:
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(self.ca_pem))
        server = ca.issue_cert("localhost", "127.0.0.1", "::1")
        cert, key = self.workdir / "pebble-cert.pem", self.workdir / "pebble-key.pem"
        cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
        server.private_key_pem.write_to_path(str(key))
        return cert, key

    def config(self, cert: Path, key: Path) -> dict[str, object]:
        return {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": str(cert),
                "privateKey": str(key),
                "httpPort": self.http_port,
                "tlsPort": self.tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }

    def start(self) -> Self:
        cfg = self.workdir / "pebble-config.json"
        cfg.write_text(json.dumps(self.config(*self._write_certificates()), indent=2))
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1")
        env["PEBBLE_WFE_NONCEREJECT"] = str(self.nonce_reject)
        if self.authz_reuse is not None:
            env["PEBBLE_AUTHZREUSE"] = str(self.authz_reuse)
        dnsserver = f"127.0.0.1:{self.dns_port}"
        self._spawn([PEBBLE, "-config", str(cfg), "-strict=false", "-dnsserver", dnsserver], env)
        self._wait_until(self._directory_answers, "serving its directory")
        return self

    def _directory_answers(self) -> bool:
        try:
            return requests.get(self.directory_url, verify=str(self.ca_pem), timeout=1).ok
        except requests.RequestException:
            return False

    def _management_get(self, path: str) -> str:
        response = requests.get(f"{self.management_url}{path}", verify=str(self.ca_pem), timeout=5)
        response.raise_for_status()
        return response.text

    def roots_pem(self) -> str:
        """The root that signs issued certificates (new on every Pebble start)."""
        return self._management_get("/roots/0")

    def intermediates_pem(self) -> str:
        return self._management_get("/intermediates/0")
