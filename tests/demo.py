"""`make demo`: Jackdaw issuing a certificate end to end on this machine, no public CA involved.

Starts BIND (zone example.test, every name -> 127.0.0.1, RFC 2136 updates with TSIG), Pebble
(the upstream CA, validating DNS-01 against that BIND) and Jackdaw under gunicorn with SQLite,
then runs an unmodified certbot against Jackdaw's directory. Jackdaw checks certbot's HTTP-01
answer itself, then proves the name to Pebble with DNS-01 and hands certbot the certificate.

    python -m tests.demo                  # issue once, print the result, stop everything
    python -m tests.demo --keep-running   # ... then keep the stack up for your own clients
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from cryptography import x509

from tests.clients import Issued, certbot, check_certificate
from tests.relay import Relay, relay_env
from tests.testbed import Bind, Pebble, free_port

ZONE = "example.test"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.demo", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--name", default=f"demo.{ZONE}", help=f"name to certify (under {ZONE}; default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="where to copy the PEM files")
    parser.add_argument("--port", type=int, default=None, help="relay port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--challenge-port", type=int, default=None,
                        help="CHALLENGE_HTTP_PORT: where clients serve HTTP-01 (default: a free one)")
    parser.add_argument("--keep-running", action="store_true",
                        help="after the demo issuance, keep the stack up until Ctrl-C")
    args = parser.parse_args(argv)
    if args.name.rstrip(".").lower() != ZONE and not args.name.rstrip(".").lower().endswith(f".{ZONE}"):
        parser.error(f"--name must be under {ZONE} (the only zone the demo's DNS serves)")
    return args


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM/SIGHUP unwind like Ctrl-C, so every server is stopped on the way out
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _step(text: str) -> None:
    print(f"==> {text}", flush=True)


def _describe(leaf: x509.Certificate) -> list[tuple[str, str]]:
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [
        ("subject", leaf.subject.rfc4514_string() or "(empty: the names are in the SANs)"),
        ("SANs", ", ".join(sans.get_values_for_type(x509.DNSName))),
        ("issuer", leaf.issuer.rfc4514_string()),
        ("valid from", f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC"),
        ("expires", f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"),
        ("serial", f"{leaf.serial_number:x}"),
    ]


def _save(issued: Issued, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    fullchain, privkey = out / "fullchain.pem", out / "privkey.pem"
    fullchain.write_bytes(issued.chain_pem)
    privkey.touch(mode=0o600)
    privkey.chmod(0o600)
    privkey.write_bytes(issued.key_pem)
    return fullchain.resolve(), privkey.resolve()


def _print_keep_running(relay: Relay, pebble: Pebble, bind: Bind, challenge_port: int, workdir: Path) -> None:
    settings = {k: v for k, v in sorted(relay.env.items()) if k in _SETTING_NAMES or k.startswith("RFC2136_")}
    print()
    print("The stack stays up until Ctrl-C. Relay settings in use (an .env for the same relay):")
    for key, value in settings.items():
        print(f"    {key}={value}")
    certdir = workdir / "your-certbot"
    print()
    print(f"Point your own client at {relay.directory_url}; any name under {ZONE} resolves to 127.0.0.1")
    print(f"for the relay, which fetches HTTP-01 from 127.0.0.1:{challenge_port} (CHALLENGE_HTTP_PORT). E.g.:")
    print(f"    {Path(sys.executable).parent / 'certbot'} certonly --non-interactive \\")
    print(f"      --agree-tos -m you@{ZONE} --server {relay.directory_url} \\")
    print(f"      --standalone --http-01-address 127.0.0.1 --http-01-port {challenge_port} \\")
    print(f"      --config-dir {certdir}/config --work-dir {certdir}/work --logs-dir {certdir}/logs \\")
    print(f"      -d www.{ZONE}")
    print(f"    lego --server {relay.directory_url} --email you@{ZONE} --accept-tos --path {workdir / 'your-lego'} \\")
    print(f"      --http --http.port 127.0.0.1:{challenge_port} --domains api.{ZONE} run")
    print()
    print(f"Logs: relay {relay.log_path}, Pebble {pebble.log_path}, BIND {bind.log_path}")
    print(f"Upstream CA (Pebble): {pebble.directory_url}, its test CA for HTTPS: {pebble.ca_pem}")
    print("Press Ctrl-C to stop.", flush=True)


_SETTING_NAMES = {
    "RELAY_DOMAIN", "ACME_EMAIL", "DNS_PROVIDER", "LE_DIRECTORY", "UPSTREAM_CA_BUNDLE", "DNS_RESOLVER",
    "DNS_AUTHORITATIVE_PORT", "DNS_PROPAGATION_TIMEOUT", "ALLOWED_DOMAINS", "CHALLENGE_HTTP_PORT",
    "CHALLENGE_TIMEOUT", "CHALLENGE_RETRIES", "CHALLENGE_RETRY_DELAY", "CHALLENGE_ALLOW_LOOPBACK", "DATA_DIR",
    "LOG_LEVEL", "JACKDAW_BIND", "RELAY_CERT_ENABLED",
}


def run(args: argparse.Namespace, workdir: Path) -> None:
    name = args.name.rstrip(".").lower()
    challenge_port = args.challenge_port or free_port()
    # Everything is started from this (main) thread: test-bed children die with their thread.
    with ExitStack() as stack:
        _step(f"starting BIND for {ZONE} (RFC 2136 + TSIG) on loopback")
        bind = stack.enter_context(Bind(workdir / "bind", {ZONE: ["* 60 IN A 127.0.0.1"]}))
        _step(f"starting Pebble (the upstream CA) using that BIND at {bind.nameserver}")
        pebble = stack.enter_context(Pebble(workdir / "pebble", bind.port))
        _step("starting Jackdaw under gunicorn (SQLite)")
        env = relay_env(workdir / "relay", bind, pebble, challenge_port, ALLOWED_DOMAINS=ZONE)
        relay = stack.enter_context(Relay(workdir / "relay", env, port=args.port))
        print(f"    relay directory: {relay.directory_url}", flush=True)

        _step(f"certbot certonly --standalone -d {name} --server {relay.directory_url}")
        started = time.monotonic()
        try:
            issued = certbot(workdir / "certbot", relay.directory_url, [name], standalone_port=challenge_port)
        except AssertionError as exc:
            raise RuntimeError(f"{exc}\n--- relay log (tail) ---\n{relay.log_tail()}") from None
        elapsed = time.monotonic() - started
        leaf = check_certificate(issued, [name], pebble.roots_pem())
        fullchain, privkey = _save(issued, args.out)

        print()
        print(f"Certificate issued through Jackdaw in {elapsed:.1f} s (certbot run, start to finish).")
        print(f"    relay directory  {relay.directory_url}")
        print(f"    upstream CA      {pebble.directory_url} (Pebble, a test CA: not publicly trusted)")
        for label, value in _describe(leaf):
            print(f"    {label:<16} {value}")
        print(f"    fullchain        {fullchain}")
        print(f"    private key      {privkey} (made by certbot; it never left the client)")
        print(f"    TXT left behind  {bind.txt(f'_acme-challenge.{name}') or 'none'}")
        print("Chain verified up to Pebble's root; the SANs and the key match what certbot asked for.", flush=True)

        if args.keep_running:
            _print_keep_running(relay, pebble, bind, challenge_port, workdir)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt as interrupt:
                print(f"\n{str(interrupt) or 'Ctrl-C'}: stopping", flush=True)
        _step("stopping Jackdaw, Pebble and BIND")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    workdir = Path(tempfile.mkdtemp(prefix="jackdaw-demo-"))
    try:
        run(args, workdir)
    except KeyboardInterrupt:
        print("\nstopped; everything the demo started is down.", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
        return 130
    except Exception as exc:
        print(f"\ndemo FAILED: {exc}", file=sys.stderr)
        print(f"logs kept in {workdir}", file=sys.stderr)
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
