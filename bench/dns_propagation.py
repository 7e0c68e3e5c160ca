"""DNS-01 propagation: seconds from "TXT written" to "every authoritative server serves it".

The original Jackdaw slept a fixed 30 s after writing each TXT record. Jackdaw now polls every
authoritative server of the zone (jackdaw.dns.propagation.wait_for_txt) and goes on as soon as
all of them answer the value. This measures that wait against a real BIND on loopback:

* ``primary only``: one BIND (ns1 A 127.0.0.1); the record is served the moment the RFC 2136
  update returns, so the figure is the poll's own overhead (zone/NS/address lookups + one round).
* ``--with-secondary``: BIND primary plus a BIND secondary (ns2 AAAA ::1, same port) fed by real
  NOTIFY + IXFR with ``notify-delay 0``: no artificial lag, BIND's own NOTIFY latency only.
* ``--with-pebble``: Pebble (PEBBLE_VA_NOSLEEP=1) resolving through the primary; per order the
  clock runs from the TXT write until ``answer_challenge`` returned (wait_for_txt + the POST),
  i.e. "TXT written -> upstream challenge answered" (target well under 1 s); the time until
  Pebble reports the authorization valid is shown too (proof the record was right).

Each series: N writes with distinct names, per DNS_PROPAGATION_INTERVAL (default 0.5 and 0.1);
median, p95 and max. Run from the repository root:

    /tmp/v/bin/python -m bench.dns_propagation [--n 20] [--with-secondary] [--with-pebble]
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # `python bench/dns_propagation.py`: make `tests` and `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import josepy as jose
from acme import challenges, crypto_util, messages
from acme import client as acme_client
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench._common import ZONE, markdown_table, median
from jackdaw.dns.providers.rfc2136 import RFC2136Provider
from jackdaw.dns.resolver import make_resolver
from jackdaw.ops.dnscheck import wait_for_txt
from tests.testbed import Bind, Pebble

#: the original Jackdaw's fixed sleep after writing the TXT records
ORIGINAL_WAIT = 30.0
#: the issue's target for "TXT written -> upstream challenge answered"
TARGET = 1.0
AUTHZ_DEADLINE = 30.0


@dataclass
class Series:
    setup: str
    interval: float
    seconds: list[float]
    #: per server label: its own seconds per write (from wait_for_txt's result)
    per_server: dict[str, list[float]]
    #: Pebble only: seconds from the TXT write until the authorization was valid
    valid_after: list[float] | None = None

    def p95(self) -> float:
        return percentile(self.seconds, 95)


def percentile(values: Sequence[float], pct: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def dns_series(setup: str, bind: Bind, interval: float, n: int) -> Series:
    """N fresh names: write through RFC 2136, then time wait_for_txt until all servers serve it."""
    provider = RFC2136Provider.from_env(bind.env())
    seconds: list[float] = []
    per_server: dict[str, list[float]] = {}
    tag = secrets.token_hex(3)
    for i in range(n):
        fqdn, value = f"_acme-challenge.b{i}-{tag}.{ZONE}", secrets.token_urlsafe(32)
        provider.present(ZONE, fqdn, value)
        start = time.perf_counter()  # the provider's update returned: "TXT written"
        try:
            timings = wait_for_txt([(fqdn, value)], make_resolver(bind.nameserver), timeout=30,
                                   interval=interval, ns_port=bind.port)
            seconds.append(time.perf_counter() - start)
        finally:
            provider.cleanup(ZONE, fqdn, value)
        for label, t in timings.items():
            per_server.setdefault(label, []).append(t)
    return Series(setup, interval, seconds, per_server)


def pebble_client(pebble: Pebble) -> acme_client.ClientV2:
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = acme_client.ClientNetwork(key, alg=jose.ES256, verify_ssl=str(pebble.ca_pem),  # type: ignore[arg-type]
                                    user_agent="jackdaw-bench-dns")
    client = acme_client.ClientV2(acme_client.ClientV2.get_directory(pebble.directory_url, net), net)
    client.new_account(messages.NewRegistration.from_data(email="bench@example.test", terms_of_service_agreed=True))
    return client


def pebble_series(bind: Bind, pebble: Pebble, interval: float, n: int) -> Series:
    """Per order: TXT written -> wait_for_txt -> answer_challenge returned (timed), then poll
    the authorization until Pebble calls it valid (timed separately, never skipped)."""
    client = pebble_client(pebble)
    account_key = client.net.key
    assert account_key is not None
    provider = RFC2136Provider.from_env(bind.env())
    key_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    seconds: list[float] = []
    valid_after: list[float] = []
    per_server: dict[str, list[float]] = {}
    tag = secrets.token_hex(3)
    for i in range(n):
        name = f"p{i}-{tag}.{ZONE}"
        order = client.new_order(crypto_util.make_csr(key_pem, [name]))
        authzr = order.authorizations[0]
        challb = next(c for c in authzr.body.challenges if isinstance(c.chall, challenges.DNS01))
        chall: challenges.DNS01 = challb.chall
        fqdn, value = chall.validation_domain_name(name), chall.validation(account_key)
        provider.present(ZONE, fqdn, value)
        start = time.perf_counter()
        try:
            timings = wait_for_txt([(fqdn, value)], make_resolver(bind.nameserver), timeout=30,
                                   interval=interval, ns_port=bind.port)
            client.answer_challenge(challb, chall.response(account_key))
            seconds.append(time.perf_counter() - start)
            valid_after.append(wait_valid(client, authzr, start))
        finally:
            provider.cleanup(ZONE, fqdn, value)
        for label, t in timings.items():
            per_server.setdefault(label, []).append(t)
    return Series("Pebble: TXT written → challenge answered", interval, seconds, per_server, valid_after)


def wait_valid(client: acme_client.ClientV2, authzr: messages.AuthorizationResource, start: float) -> float:
    deadline = start + AUTHZ_DEADLINE
    while time.perf_counter() < deadline:
        authzr, _ = client.poll(authzr)
        if authzr.body.status == messages.STATUS_VALID:
            return time.perf_counter() - start
        if authzr.body.status != messages.STATUS_PENDING:
            raise RuntimeError(f"authorization {authzr.uri} is {authzr.body.status}: {authzr.body.challenges}")
        time.sleep(0.02)
    raise RuntimeError(f"authorization {authzr.uri} still pending after {AUTHZ_DEADLINE:.0f} s")


def print_series(s: Series) -> None:
    servers = ", ".join(f"{label} median {fmt(median(v))}" for label, v in sorted(s.per_server.items()))
    line = (f"{s.setup} @ interval {s.interval:g} s: median {fmt(median(s.seconds))}, p95 {fmt(s.p95())}, "
            f"max {fmt(max(s.seconds))} (n={len(s.seconds)}; {servers})")
    if s.valid_after:
        line += f"; authorization valid after median {fmt(median(s.valid_after))}"
    print(line, flush=True)


def summary(results: list[Series], n: int) -> str:
    rows = []
    for s in results:
        med = median(s.seconds)
        rows.append([
            s.setup,
            f"{s.interval:g} s",
            str(len(s.seconds)),
            fmt(med),
            fmt(s.p95()),
            fmt(max(s.seconds)),
            f"{med / ORIGINAL_WAIT:.4f} ({ORIGINAL_WAIT / med:,.0f}x faster)",
        ])
    rows.append(["original Jackdaw: fixed sleep", "-", "-", fmt(ORIGINAL_WAIT), fmt(ORIGINAL_WAIT),
                 fmt(ORIGINAL_WAIT), "1"])
    table = markdown_table(
        ["setup", "DNS_PROPAGATION_INTERVAL", "N", "median", "p95", "max", "median / 30 s"], rows)
    notes = [f"Seconds from \"TXT written\" (RFC 2136 update returned) to \"every authoritative server serves"
             f" it\" (wait_for_txt returned), {n} distinct names per series, BIND 9.18 on loopback."]
    valid = [s for s in results if s.valid_after]
    for s in valid:
        assert s.valid_after is not None
        notes.append(f"Pebble @ {s.interval:g} s: authorization valid after median {fmt(median(s.valid_after))}"
                     f" (p95 {fmt(percentile(s.valid_after, 95))}) from the TXT write.")
    return table + "\n\n" + "\n".join(notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20, help="writes per series (default 20)")
    parser.add_argument("--intervals", default="0.5,0.1",
                        help="DNS_PROPAGATION_INTERVAL values, comma-separated (default 0.5,0.1)")
    parser.add_argument("--with-secondary", action="store_true",
                        help="also a primary + secondary (real NOTIFY/IXFR, notify-delay 0) series")
    parser.add_argument("--with-pebble", action="store_true",
                        help="also time TXT written -> answer_challenge returned against Pebble")
    parser.add_argument("--workdir", type=Path, default=None, help="keep BIND/Pebble logs here")
    args = parser.parse_args(argv)
    try:
        intervals = [float(x) for x in args.intervals.split(",") if x.strip()]
    except ValueError:
        parser.error("--intervals takes numbers, e.g. 0.5,0.1")
    if not intervals or any(x < 0.05 for x in intervals):
        parser.error("--intervals: at least one, each >= 0.05 (DNS_PROPAGATION_INTERVAL's minimum)")
    if not 1 <= args.n <= 200:
        parser.error("--n must be 1..200")

    with tempfile.TemporaryDirectory(prefix="jackdaw-dns-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = run(args, intervals, workdir)
    print("\n--- summary (markdown) ---")
    print(summary(results, args.n))
    pebble = [s for s in results if s.valid_after is not None]
    if pebble:
        worst = max(median(s.seconds) for s in pebble)
        print(f"\ntarget: TXT written → challenge answered well under {TARGET:g} s: median {fmt(worst)} at worst"
              f" -> {'met' if worst < TARGET else 'MISSED'}")
        return 0 if worst < TARGET else 1
    return 0


def run(args: argparse.Namespace, intervals: list[float], workdir: Path) -> list[Series]:
    results: list[Series] = []
    stops: list[Callable[[], None]] = []
    try:
        # every server is started from the main thread: testbed children get SIGTERM when the
        # thread that started them ends
        bind = Bind(workdir / "bind", {ZONE: []})
        stops.append(bind.stop)
        bind.start()
        for interval in intervals:
            results.append(dns_series("primary only", bind, interval, args.n))
            print_series(results[-1])

        if args.with_secondary:
            primary = Bind(workdir / "primary", {ZONE: []}, secondaries=["::1"], notify_delay=0)
            stops.append(primary.stop)
            primary.start()
            secondary = Bind.secondary_of(primary, workdir / "secondary", "::1")
            stops.append(secondary.stop)
            secondary.start()
            for interval in intervals:
                results.append(dns_series("primary + secondary (NOTIFY, no added lag)", primary, interval, args.n))
                print_series(results[-1])

        if args.with_pebble:
            for k, interval in enumerate(intervals):
                # a fresh Pebble per series: its newOrder slows as its store grows
                pebble = Pebble(workdir / f"pebble-{k}", bind.port, nonce_reject=0)
                stops.append(pebble.stop)
                pebble.start()
                try:
                    results.append(pebble_series(bind, pebble, interval, args.n))
                finally:
                    pebble.stop()
                print_series(results[-1])
    finally:
        for stop in reversed(stops):
            stop()
    return results


if __name__ == "__main__":
    sys.exit(main())
