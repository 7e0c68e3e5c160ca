"""Time to certificate: certbot directly against Pebble vs certbot through Jackdaw (SQLite).

Starts BIND (names under example.test resolve to 127.0.0.1), Pebble (PEBBLE_VA_NOSLEEP=1,
no nonce rejection) and Jackdaw under gunicorn with its SQLite default. Pebble's VA and
Jackdaw's VA both fetch HTTP-01 responses from the same port, so certbot runs with the very
same ``--standalone --http-01-port P`` in both legs; only ``--server`` (and the CA bundle for
Pebble's HTTPS) differs. Each run uses a fresh certbot config dir (so it includes account
registration) and a name never used before. Pairs alternate which leg goes first.

Run from the repository root:  /tmp/v/bin/python -m bench.ttc [--pairs 5]
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # `python bench/ttc.py`: make `tests` and `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BIN, ZONE, clean_env, markdown_table, median
from tests.clients import Issued, check_certificate
from tests.relay import Relay, relay_env
from tests.testbed import Bind, Pebble, free_port

DIRECT, RELAY = "direct", "relay"
REFERENCES = [
    ("serles-acme 1.3", "1.77x"),
    ("acme2certifier 0.46", "6.6x"),
    ("original Jackdaw", "≥ 30 s fixed DNS wait per order"),
]
TARGET_RATIO = 1.2


@dataclass
class Run:
    leg: str
    name: str
    seconds: float
    ok: bool
    detail: str = ""


@dataclass
class Bed:
    bind: Bind
    pebble: Pebble
    relay: Relay
    port: int


def certbot(workdir: Path, directory_url: str, name: str, port: int, ca_bundle: Path | None,
            timeout: float) -> tuple[float, subprocess.CompletedProcess[str] | None]:
    """One `certbot certonly --standalone` from scratch; returns (wall seconds, process)."""
    argv = [str(BIN / "certbot"), "certonly", "--non-interactive", "--agree-tos", "-m", "admin@example.test",
            "--server", directory_url, "--config-dir", str(workdir / "config"), "--work-dir", str(workdir / "work"),
            "--logs-dir", str(workdir / "logs"), "--cert-name", name,
            "--standalone", "--http-01-address", "127.0.0.1", "--http-01-port", str(port), "-d", name]
    env = clean_env(REQUESTS_CA_BUNDLE=str(ca_bundle)) if ca_bundle else clean_env()
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, None
    return time.perf_counter() - start, proc


def one_run(leg: str, workdir: Path, bed: Bed, label: str, timeout: float) -> Run:
    name = f"ttc-{leg}-{label}-{secrets.token_hex(3)}.{ZONE}"
    if leg == DIRECT:
        url, bundle = bed.pebble.directory_url, bed.pebble.ca_pem
    else:
        url, bundle = bed.relay.directory_url, None
    seconds, proc = certbot(workdir / f"{leg}-{label}", url, name, bed.port, bundle, timeout)
    if proc is None:
        return Run(leg, name, seconds, False, f"timed out after {timeout:.0f} s")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        return Run(leg, name, seconds, False, f"certbot exit {proc.returncode}:\n{tail}")
    live = workdir / f"{leg}-{label}" / "config" / "live" / name
    issued = Issued((live / "fullchain.pem").read_bytes(), (live / "privkey.pem").read_bytes())
    try:  # outside the timed part: the certificate is real, for this name, from Pebble's CA
        check_certificate(issued, [name], bed.pebble.roots_pem())
    except Exception as exc:
        return Run(leg, name, seconds, False, f"certificate check failed: {exc!r}")
    return Run(leg, name, seconds, True)


def fmt(seconds: float) -> str:
    return f"{seconds:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=5, help="timed (direct, relay) pairs (default 5)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed pairs first: certbot imports cached, relay's upstream account registered"
                             " (default 1; 0 to time a cold relay)")
    parser.add_argument("--timeout", type=float, default=120.0, help="per certbot run, seconds (default 120)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs here (default: a temp dir, removed)")
    args = parser.parse_args(argv)
    if args.pairs < 1 or args.pairs > 20:
        parser.error("--pairs must be 1..20 (Pebble slows as its store grows; restart between series)")

    with tempfile.TemporaryDirectory(prefix="jackdaw-ttc-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        return _bench(args, workdir)


def _bench(args: argparse.Namespace, workdir: Path) -> int:
    port = free_port()
    bind = Bind(workdir / "bind", {ZONE: ["* 60 IN A 127.0.0.1"]})
    pebble = Pebble(workdir / "pebble", bind.port, http_port=port, nonce_reject=0)
    relay: Relay | None = None
    runs: list[tuple[Run, Run]] = []
    try:
        # started from the main thread: testbed children get SIGTERM when their starting thread ends
        bind.start()
        pebble.start()
        env = relay_env(workdir / "relay", bind, pebble, port, ALLOWED_DOMAINS=ZONE, LOG_LEVEL="WARNING")
        relay = Relay(workdir / "relay", env).start()
        bed = Bed(bind, pebble, relay, port)
        print(f"BIND 127.0.0.1:{bind.port}  Pebble {pebble.directory_url}  Jackdaw {relay.directory_url}"
              f"  HTTP-01 port {port}", flush=True)

        for i in range(args.warmup):
            for leg in (DIRECT, RELAY):
                run = one_run(leg, workdir, bed, f"warmup{i}", args.timeout)
                print(f"warm-up {leg:6s} {fmt(run.seconds)} {'ok' if run.ok else 'FAILED: ' + run.detail}",
                      flush=True)

        print(f"\n{'pair':>4}  {'first':6}  {'direct':>9}  {'relay':>9}  {'ratio':>6}", flush=True)
        for i in range(args.pairs):
            order = (DIRECT, RELAY) if i % 2 == 0 else (RELAY, DIRECT)
            result = {leg: one_run(leg, workdir, bed, str(i), args.timeout) for leg in order}
            d, r = result[DIRECT], result[RELAY]
            runs.append((d, r))
            ratio = f"{r.seconds / d.seconds:.2f}" if d.ok and r.ok else "-"
            print(f"{i + 1:>4}  {order[0]:6}  {fmt(d.seconds):>9}  {fmt(r.seconds):>9}  {ratio:>6}", flush=True)
            for run in (d, r):
                if not run.ok:
                    print(f"      {run.leg} run for {run.name} FAILED: {run.detail}", flush=True)
    finally:
        if relay is not None:
            failed = any(not run.ok for pair in runs for run in pair if run.leg == RELAY)
            if failed:
                print(f"--- relay log tail ---\n{relay.log_tail(40)}", flush=True)
            relay.stop()
        pebble.stop()
        bind.stop()

    return _report(args, runs)


def _report(args: argparse.Namespace, runs: list[tuple[Run, Run]]) -> int:
    direct = [d.seconds for d, _ in runs if d.ok]
    relay = [r.seconds for _, r in runs if r.ok]
    ratios = [r.seconds / d.seconds for d, r in runs if d.ok and r.ok]
    failures = sum(not run.ok for pair in runs for run in pair)
    med_ratio = median(ratios)
    verdict = "meets" if med_ratio <= TARGET_RATIO else "MISSES"
    print(f"\nmedian direct {fmt(median(direct))}  median relay {fmt(median(relay))}  "
          f"median ratio relay/direct {med_ratio:.2f}x ({verdict} the ≤ {TARGET_RATIO}x target)"
          f"  failures {failures}")
    print(f"min/max direct {fmt(min(direct, default=float('nan')))}/{fmt(max(direct, default=float('nan')))}"
          f"  relay {fmt(min(relay, default=float('nan')))}/{fmt(max(relay, default=float('nan')))}")

    rows = [
        ["certbot → Pebble (direct)", fmt(median(direct)), "1.00x"],
        ["certbot → Jackdaw (SQLite) → Pebble", fmt(median(relay)), f"**{med_ratio:.2f}x**"],
    ]
    rows += [[f"reference: {peer}", "", figure] for peer, figure in REFERENCES]
    print(f"\n--- summary (markdown) ---\nTime to certificate, certbot 5.8 `--standalone`, one name, fresh account per"
          f" run, median of {len(ratios)} alternating pairs (ratio = median of per-pair relay/direct;"
          f" target ≤ {TARGET_RATIO}x):\n")
    print(markdown_table(["path", "median wall time", "relay / direct"], rows))
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
