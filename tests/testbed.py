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
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, NoReturn, Self

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import requests
import trustme

NAMED = "/usr/sbin/named"
PEBBLE = "/usr/bin/pebble"
#: a current Pebble build (profiles, ARI, dns-persist-01, EAB), where the shared tools have one
CURRENT_PEBBLE = str(Path(__file__).resolve().parent.parent.parent / "shared" / "tools" / "pebble" / "pebble")
START_TIMEOUT = 15.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (racy by nature, fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bindable(address: str, port: int, kind: socket.SocketKind) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, kind) as sock:
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def free_dns_port(*also: str) -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (DNS listens on both) and on ``also``
    (further loopback addresses, e.g. ::1 for a secondary on the same port)."""
    while True:
        port = free_port()
        if _bindable("127.0.0.1", port, socket.SOCK_DGRAM) and all(
            _bindable(a, port, kind) for a in also for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM)
        ):
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
    """``named`` serving ``zones`` on address:port, each updatable with one TSIG key.

    ``zones`` maps a zone name to extra zone-file lines relative to its origin, e.g.
    ``{"example.test": ["a 60 IN A 127.0.0.1"]}``. Every zone gets SOA, ``NS ns1.<zone>`` and
    ``ns1.<zone> A <address>``, so propagation checks find this server (on ``port``, not 53).

    Secondaries: a primary built with ``secondaries=["::1"]`` also lists ``ns2.<zone> AAAA
    ::1`` and lets TSIG-signed transfers in; ``Bind.secondary_of`` builds that server on the
    primary's port, since propagation checks ask every NS address on one port. (Not 127.0.0.2:
    named only listens on addresses configured on an interface, and lo carries 127.0.0.1 and
    ::1 only.) The primary sends no NOTIFY unless ``notify_delay`` is set, and the SOA refresh
    is an hour, so a secondary serves a change only once ``notify()`` pokes it: the test decides
    exactly how long the secondary lags.
    """

    name = "named"

    def __init__(
        self,
        workdir: Path,
        zones: dict[str, list[str]],
        port: int | None = None,
        key_name: str = "jackdaw-test",
        *,
        address: str = "127.0.0.1",
        secondaries: Sequence[str] = (),
        notify_delay: int | None = None,
        recursive: bool = False,
    ) -> None:
        super().__init__(workdir)
        #: answer recursive queries (Pebble's -dnsserver) by chasing CNAMEs across this server's
        #: own zones; a local root zone keeps every other name from leaving the machine
        self.recursive = recursive
        self.zones = {zone.rstrip(".").lower(): lines for zone, lines in zones.items()}
        self.address = address
        self.secondaries = tuple(secondaries)
        self.port = port or free_dns_port(*{address, *self.secondaries} - {"127.0.0.1"})
        self.key_name = key_name
        self.key_secret = base64.b64encode(secrets.token_bytes(32)).decode()
        #: the relay's key may only change TXT records (README's recipe); tests that set up
        #: other records (a host's A record) sign with this one
        self.admin_key_name = f"{key_name}-admin"
        self.admin_key_secret = base64.b64encode(secrets.token_bytes(32)).decode()
        #: None: no NOTIFY to the secondaries (they lag until poked); N: real NOTIFY, N s apart
        self.notify_delay = notify_delay
        #: the primary this server transfers its zones from; None for a primary
        self.primary: Bind | None = None

    @classmethod
    def secondary_of(cls, primary: Bind, workdir: Path, address: str = "::1") -> Bind:
        """A secondary for all of ``primary``'s zones, on ``address`` and the primary's port."""
        if address not in primary.secondaries:
            raise ValueError(f"{address} is not among the primary's secondaries {primary.secondaries}")
        server = cls(workdir, {zone: [] for zone in primary.zones}, port=primary.port,
                     key_name=primary.key_name, address=address)
        server.key_secret = primary.key_secret  # the transfer key
        server.primary = primary
        return server

    @property
    def nameserver(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "DNS_PROVIDER": "rfc2136",
            "RFC2136_NAMESERVER": self.nameserver,
            "RFC2136_TSIG_KEY": self.key_name,
            "RFC2136_TSIG_SECRET": self.key_secret,
            "RFC2136_TSIG_ALGORITHM": "hmac-sha256",
        }

    def _zone_statement(self, zone: str) -> str:
        d, key = self.workdir, f'key "{self.key_name}";'
        if self.primary is not None:
            primary = self.primary
            # NOTIFY comes from the primary or, across address families, from the test bed
            return (f'zone "{zone}" {{ type secondary; file "{d}/sec.{zone}"; '
                    f"primaries {{ {primary.address} port {primary.port} {key} }}; "
                    f"allow-notify {{ 127.0.0.1; ::1; }}; }};\n")
        extra = ""
        if self.secondaries:
            extra = f" allow-transfer {{ {key} }};"
            if self.notify_delay is not None:
                targets = "".join(f"{a} port {self.port}; " for a in self.secondaries)
                extra += f" notify explicit; also-notify {{ {targets}}}; notify-delay {self.notify_delay};"
        # README's BIND recipe: the relay's key may change TXT records anywhere in the zone, nothing else
        policy = (f'update-policy {{ grant "{self.key_name}" zonesub TXT; '
                  f'grant "{self.admin_key_name}" zonesub ANY; }};')
        return f'zone "{zone}" {{ type primary; file "{d}/db.{zone}"; {policy}{extra} }};\n'

    def named_conf(self) -> str:
        d = self.workdir
        zones = "".join(self._zone_statement(zone) for zone in self.zones)
        v4, v6 = ("none", self.address) if ":" in self.address else (self.address, "none")
        recursion = "recursion no;"
        if self.recursive:
            recursion = "recursion yes; allow-recursion { 127.0.0.1; ::1; };"
            zones += f'zone "." {{ type primary; file "{d}/db.root"; }};\n'
        # notify no (zones may override): the NS records say <address>:53, which is not us
        return f"""\
key "{self.key_name}" {{ algorithm hmac-sha256; secret "{self.key_secret}"; }};
key "{self.admin_key_name}" {{ algorithm hmac-sha256; secret "{self.admin_key_secret}"; }};
controls {{ }};
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    dump-file "{d}/named.dump";
    statistics-file "{d}/named.stats";
    listen-on port {self.port} {{ {v4}; }};
    listen-on-v6 port {self.port} {{ {v6}; }};
    {recursion}
    allow-query {{ any; }};
    dnssec-validation no;
    notify no;
}};
{zones}"""

    def zone_file(self, zone: str, lines: list[str]) -> str:
        extra = "".join(f"{line}\n" for line in lines)
        servers = "".join(
            f"@ IN NS ns{n}.{zone}.\nns{n} IN {'AAAA' if ':' in address else 'A'} {address}\n"
            for n, address in enumerate((self.address, *self.secondaries), start=1)
        )
        return f"""\
$ORIGIN {zone}.
$TTL 60
@ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 60
{servers}{extra}"""

    def start(self) -> Self:
        conf = self.workdir / "named.conf"
        conf.write_text(self.named_conf())
        if self.primary is None:
            for zone, lines in self.zones.items():
                (self.workdir / f"db.{zone}").write_text(self.zone_file(zone, lines))
        if self.recursive:
            (self.workdir / "db.root").write_text(
                "$TTL 60\n@ IN SOA localhost. hostmaster.localhost. 1 3600 600 86400 60\n@ IN NS localhost.\n"
                "localhost. IN A 127.0.0.1\n")
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
            # a secondary answers SERVFAIL until its first transfer completed
            return all(self._query(zone, dns.rdatatype.SOA, 0.2).rcode() == dns.rcode.NOERROR for zone in self.zones)
        except (dns.exception.Timeout, OSError):
            return False

    def _query(self, name: str, rdtype: dns.rdatatype.RdataType, timeout: float = 2.0) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        return dns.query.udp(query, self.address, timeout=timeout, port=self.port)

    def serial(self, zone: str) -> int:
        """The SOA serial this server serves for ``zone`` now."""
        answer = self._query(zone, dns.rdatatype.SOA).find_rrset(
            dns.message.ANSWER, dns.name.from_text(zone), dns.rdataclass.IN, dns.rdatatype.SOA)
        return int(answer[0].serial)

    def notify(self, zone: str, timeout: float = 2.0) -> None:
        """Send this secondary the NOTIFY its primary would: it then asks the primary for the
        zone's SOA and fetches the changes (IXFR) within milliseconds."""
        if self.primary is None:
            raise RuntimeError("notify() pokes a secondary; this server is a primary")
        message = dns.message.make_query(zone, dns.rdatatype.SOA)
        message.flags = dns.flags.AA  # flags hold the opcode too: set them first
        message.set_opcode(dns.opcode.NOTIFY)
        response = dns.query.udp(message, self.address, timeout=timeout, port=self.port)
        if response.rcode() != dns.rcode.NOERROR:
            raise RuntimeError(f"NOTIFY {zone} to {self.nameserver}: {dns.rcode.to_text(response.rcode())}")

    def wait_for_serial(self, zone: str, serial: int, timeout: float = 5.0) -> float:
        """Seconds until this server serves ``zone`` at ``serial`` or later (RuntimeError if not)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.serial(zone) >= serial:
                return time.monotonic() - start
            time.sleep(0.01)
        raise RuntimeError(f"{self.nameserver} still serves {zone} below serial {serial} after {timeout} s")

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
    ``va_sleep`` leaves Pebble's validation sleeps on; ``binary`` picks another Pebble build.
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
        va_sleep: bool = False,
        binary: str = PEBBLE,
        profiles: dict[str, dict[str, object]] | None = None,
        eab_keys: dict[str, str] | None = None,
    ) -> None:
        super().__init__(workdir)
        #: certificate profiles (a current Pebble only), e.g. {"shortlived": {"validityPeriod": 518400}}
        self.profiles = profiles
        #: key id -> base64url HMAC key: the CA requires external account binding (a current Pebble)
        self.eab_keys = eab_keys
        #: Pebble's VA sleeps 0-5 s before each validation, as a real CA takes its time
        self.va_sleep = va_sleep
        self.binary = binary
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
                "externalAccountBindingRequired": self.eab_keys is not None,
                **({"externalAccountMACKeys": self.eab_keys} if self.eab_keys is not None else {}),
                **({"profiles": self.profiles} if self.profiles is not None else {}),
            }
        }

    def start(self) -> Self:
        cfg = self.workdir / "pebble-config.json"
        cfg.write_text(json.dumps(self.config(*self._write_certificates()), indent=2))
        env = {k: v for k, v in os.environ.items() if k != "PEBBLE_VA_NOSLEEP"}
        if not self.va_sleep:
            env["PEBBLE_VA_NOSLEEP"] = "1"
        env["PEBBLE_WFE_NONCEREJECT"] = str(self.nonce_reject)
        if self.authz_reuse is not None:
            env["PEBBLE_AUTHZREUSE"] = str(self.authz_reuse)
        dnsserver = f"127.0.0.1:{self.dns_port}"
        self._spawn([self.binary, "-config", str(cfg), "-strict=false", "-dnsserver", dnsserver], env)
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

    def set_renewal_info(self, cert_pem: str, response: dict[str, object]) -> None:
        """What a current Pebble answers for this certificate's renewalInfo from now on."""
        resp = requests.post(f"{self.management_url}/set-renewal-info/", verify=str(self.ca_pem), timeout=5,
                             json={"Certificate": cert_pem, "ARIResponse": json.dumps(response)})
        resp.raise_for_status()
