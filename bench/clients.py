"""Every client, straight to Pebble and through Jackdaw behind nginx with TLS, alternating.

The clients are the real programs: certbot (this venv), and Debian's lego, acme-tiny, uacme,
dehydrated and Caddy. Each run is a fresh account and a name never used before, from start to
certificate on disk. Both legs are HTTPS: Pebble's own listener, and the shipped nginx site in
front of Jackdaw (SQLite, gunicorn.conf.py) with a certificate for ``localhost`` from a CA made
here. The clients trust Pebble's and that CA (each the way it takes a CA file; uacme, whose
libcurl-gnutls reads only the system's file, in a private mount namespace where that file is
the bundle: this needs root). Pebble's VA and Jackdaw's VA fetch HTTP-01 from the same port.

Pairs alternate which leg goes first; the figure per client is the median of per-pair
relay/direct ratios (target ≤ 1.2x).

Run from the repository root:  .venv/bin/python -m bench.clients [--pairs 3] [--only uacme,caddy]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # `python bench/clients.py`: make `tests` and `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench._common import ZONE, markdown_table, median
from tests.clients import Issued, Webroot, acme_tiny, caddy, certbot, check_certificate, dehydrated, lego, uacme
from tests.nginx import Nginx
from tests.relay import Relay, relay_env
from tests.testbed import Bind, Pebble, free_port

DIRECT, RELAY = "direct", "relay"
TARGET_RATIO = 1.2
FRONT = "localhost"


@dataclass
class Leg:
    url: str
    bundle: Path


@dataclass
class Bed:
    pebble: Pebble
    port: int
    legs: dict[str, Leg]


def _front_certificate(cert_dir: Path) -> bytes:
    """A CA of this run and a certificate for localhost from it, as nginx's; returns the CA's PEM."""
    now = datetime.now(UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench.clients front CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(FRONT)]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_dir.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    (cert_dir / "fullchain.pem").write_bytes(leaf.public_bytes(pem))
    (cert_dir / "privkey.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
    return ca.public_bytes(pem)


def _system_bundle_as(bundle: Path) -> list[str]:
    """argv prefix: run the command where the system CA file is ``bundle`` (a private mount namespace)."""
    script = f'mount --bind "{bundle}" /etc/ssl/certs/ca-certificates.crt && exec "$@"'
    return ["unshare", "--mount", "sh", "-c", script, "--"]


Client = Callable[[Path, Leg, str, Bed], Issued]


def _with_webroot(run: Callable[[Path, Leg, str, Path], Issued]) -> Client:
    def client(workdir: Path, leg: Leg, name: str, bed: Bed) -> Issued:
        with Webroot(workdir / "www", bed.port) as www:
            return run(workdir, leg, name, www.root)
    return client


CLIENTS: dict[str, Client] = {
    "certbot": lambda w, leg, name, bed: certbot(w, leg.url, [name], standalone_port=bed.port,
                                                 env={"REQUESTS_CA_BUNDLE": str(leg.bundle)}),
    "lego": lambda w, leg, name, bed: lego(w, leg.url, [name], http_port=bed.port,
                                           env={"LEGO_CA_CERTIFICATES": str(leg.bundle)}),
    "acme-tiny": _with_webroot(lambda w, leg, name, root: acme_tiny(w, leg.url, [name], webroot=root,
                                                                    env={"SSL_CERT_FILE": str(leg.bundle)})),
    "uacme": _with_webroot(lambda w, leg, name, root: uacme(w, leg.url, [name], webroot=root,
                                                            wrapper=_system_bundle_as(leg.bundle))),
    "dehydrated": _with_webroot(lambda w, leg, name, root: dehydrated(w, leg.url, [name], webroot=root,
                                                                      env={"CURL_CA_BUNDLE": str(leg.bundle)})),
    "caddy": lambda w, leg, name, bed: caddy(w, leg.url, [name], http_port=bed.port, trusted_roots=leg.bundle),
}


def one_run(client: str, leg: str, workdir: Path, bed: Bed) -> tuple[float, str]:
    """Wall seconds of one issuance and "" (or the failure)."""
    name = f"{client}-{leg}-{secrets.token_hex(3)}.{ZONE}"
    start = time.perf_counter()
    try:
        issued = CLIENTS[client](workdir / f"{client}-{leg}-{name}", bed.legs[leg], name, bed)
    except Exception as exc:
        return time.perf_counter() - start, str(exc).splitlines()[0] if str(exc) else repr(exc)
    seconds = time.perf_counter() - start
    try:  # outside the timed part: the certificate is real, for this name, from Pebble's CA
        check_certificate(issued, [name], bed.pebble.roots_pem())
    except Exception as exc:
        return seconds, f"certificate check failed: {exc!r}"
    return seconds, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3, help="timed (direct, relay) pairs per client (default 3)")
    parser.add_argument("--only", default="", help="comma-separated clients (default: all)")
    args = parser.parse_args(argv)
    clients = [c.strip() for c in args.only.split(",") if c.strip()] or list(CLIENTS)
    unknown = set(clients) - set(CLIENTS)
    if unknown:
        parser.error(f"unknown client(s) {', '.join(sorted(unknown))}; known: {', '.join(CLIENTS)}")
    with tempfile.TemporaryDirectory(prefix="jackdaw-clients-") as tmp:
        return _bench(args, Path(tmp), clients)


def _bench(args: argparse.Namespace, workdir: Path, clients: list[str]) -> int:
    port = free_port()
    bind = Bind(workdir / "bind", {ZONE: ["* 60 IN A 127.0.0.1"]})
    pebble = Pebble(workdir / "pebble", bind.port, http_port=port, nonce_reject=0)
    relay: Relay | None = None
    nginx: Nginx | None = None
    results: dict[str, list[tuple[float, float]]] = {c: [] for c in clients}
    failures: list[str] = []
    try:
        bind.start()
        pebble.start()
        front_ca = _front_certificate(workdir / "tls")
        relay_port = free_port()
        env = relay_env(workdir / "relay", bind, pebble, port, ALLOWED_DOMAINS=ZONE, LOG_LEVEL="WARNING",
                        RELAY_DOMAIN=FRONT, RELAY_CERT_ENABLED="false")
        relay = Relay(workdir / "relay", env, port=relay_port).start()
        nginx = Nginx(workdir / "nginx", FRONT, f"127.0.0.1:{relay_port}", workdir / "tls").start()
        bundle = workdir / "trust.pem"
        bundle.write_bytes(pebble.ca_pem.read_bytes() + front_ca)
        bed = Bed(pebble, port, {DIRECT: Leg(pebble.directory_url, bundle),
                                 RELAY: Leg(f"https://{FRONT}:{nginx.https_port}/directory", bundle)})
        print(f"Pebble {pebble.directory_url}  Jackdaw via nginx {bed.legs[RELAY].url}  HTTP-01 port {port}",
              flush=True)
        for client in clients:
            for leg in (DIRECT, RELAY):  # warm-up: imports cached, the relay's upstream account registered
                seconds, failed = one_run(client, leg, workdir, bed)
                print(f"{client:10s} warm-up {leg:6s} {seconds:6.2f} s {failed}", flush=True)
            for i in range(args.pairs):
                order = (DIRECT, RELAY) if i % 2 == 0 else (RELAY, DIRECT)
                times: dict[str, float] = {}
                for leg in order:
                    seconds, failed = one_run(client, leg, workdir, bed)
                    times[leg] = seconds
                    if failed:
                        failures.append(f"{client} {leg}: {failed}")
                        print(f"{client:10s} {leg} FAILED: {failed}", flush=True)
                results[client].append((times[DIRECT], times[RELAY]))
                print(f"{client:10s} pair {i + 1}  direct {times[DIRECT]:6.2f} s  relay {times[RELAY]:6.2f} s  "
                      f"{times[RELAY] / times[DIRECT]:.2f}x", flush=True)
    finally:
        for proc in (nginx, relay, pebble, bind):
            if proc is not None:
                proc.stop()
    rows = []
    for client, pairs in results.items():
        ratio = median([r / d for d, r in pairs])
        verdict = "" if ratio <= TARGET_RATIO else " (misses)"
        rows.append([client, f"{median([d for d, _ in pairs]):.2f} s", f"{median([r for _, r in pairs]):.2f} s",
                     f"**{ratio:.2f}x**{verdict}"])
    print(f"\n--- summary (markdown) ---\nTime to certificate, one name, fresh account per run, median of "
          f"{args.pairs} alternating pairs per client; relay = Jackdaw behind nginx (TLS), SQLite; target ≤ "
          f"{TARGET_RATIO}x:\n")
    print(markdown_table(["client", "direct to Pebble", "through Jackdaw", "relay / direct"], rows))
    for failure in failures:
        print(f"FAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
