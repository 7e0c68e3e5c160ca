"""A renewal stampede: N whole issuances at once, straight to Pebble and through Jackdaw, in one run.

Pebble's validation sleeps are on (0-5 s per challenge, like a real CA), nonce rejection off.
Every series gets a fresh Pebble (its newOrder slows as its store grows) and a fresh Jackdaw
database on PostgreSQL. For each N:

- direct: the N clients against Pebble itself (its VA fetches HTTP-01 from the shared webroot);
- one instance: the same clients through one Jackdaw (gunicorn, the project's gunicorn.conf.py);
- two instances: through nginx round robin in front of two Jackdaws on the same database.

The load generator (tests/herd.py: the `acme` library, one thread per client, polling every
second as certbot does) is the same for all three, so the direct run shows what it can drive.
Reported: wall time, ratio to direct, slowest single issuance, failures, and each Jackdaw
instance's CPU seconds.

Run from the repository root:  .venv/bin/python bench/herd.py [--sizes 50,200,500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python bench/herd.py`: make `tests` and `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import ZONE, cpu_seconds, markdown_table, process_tree
from tests import herd as herd_driver
from tests.clients import Webroot
from tests.herd import Result, herd
from tests.nginx import RoundRobin
from tests.relay import Relay, postgres_database, relay_env
from tests.testbed import Bind, Pebble, free_port

TARGET_RATIO = 1.5
DEADLINE = 90.0


@dataclass
class Series:
    mode: str
    n: int
    wall: float
    slowest: float
    failed: int
    cpu: list[float] = field(default_factory=list)
    first_error: str = ""


def summarize(mode: str, results: list[Result], wall: float, cpu: list[float]) -> Series:
    bad = [r for r in results if r.error or not r.chain_pem]
    return Series(mode, len(results), wall, max(r.seconds for r in results), len(bad), cpu,
                  bad[0].error or "" if bad else "")


def names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}.{ZONE}" for i in range(n)]


def run_size(n: int, workdir: Path, bind: Bind, instances: list[int]) -> list[Series]:
    out: list[Series] = []
    port = free_port()
    with Webroot(workdir / "www", port) as www:
        with Pebble(workdir / f"pebble-direct-{n}", bind.port, http_port=port, va_sleep=True) as pebble:
            results, wall = herd(pebble.directory_url, names(f"d{n}-", n), www.root, timeout=DEADLINE * 2,
                                 verify=str(pebble.ca_pem))
            out.append(summarize("direct to Pebble", results, wall, []))
        for count in instances:
            with ExitStack() as stack:
                pebble = stack.enter_context(Pebble(workdir / f"pebble-{count}-{n}", bind.port, va_sleep=True))
                url = stack.enter_context(postgres_database())
                relays = []
                for i in range(count):
                    # a load test: hundreds of certificates for one registered domain, which the
                    # budget ledger would refuse as Let's Encrypt would
                    env = relay_env(workdir / f"relay-{count}-{n}-{i}", bind, pebble, port, DATABASE_URL=url,
                                    ALLOWED_DOMAINS=ZONE, LOG_LEVEL="WARNING", BUDGET_ENABLED="false")
                    relays.append(stack.enter_context(Relay(workdir / f"relay-{count}-{n}-{i}", env)))
                directory = relays[0].directory_url
                if count > 1:
                    front = stack.enter_context(RoundRobin(workdir / f"nginx-{n}", [f"127.0.0.1:{r.port}"
                                                                                    for r in relays]))
                    directory = f"{front.url}/directory"
                trees = [process_tree(r.proc.pid) for r in relays if r.proc is not None]
                before = [cpu_seconds(t) for t in trees]
                results, wall = herd(directory, names(f"r{count}-{n}-", n), www.root, timeout=DEADLINE * 2)
                cpu = [cpu_seconds(t) - b for t, b in zip(trees, before, strict=True)]
                mode = "through Jackdaw" if count == 1 else f"through {count} Jackdaws + nginx"
                out.append(summarize(mode, results, wall, cpu))
    return out


def report(all_series: list[list[Series]]) -> int:
    rows = []
    worst = 0.0
    missed = False
    for series in all_series:
        direct = series[0]
        for s in series:
            ratio = s.wall / direct.wall
            if s is not direct:
                worst = max(worst, ratio)
                missed |= ratio > TARGET_RATIO or s.failed > 0 or s.slowest > DEADLINE
            rows.append([str(s.n), s.mode, f"{s.wall:.1f} s", f"{ratio:.2f}x", f"{s.slowest:.1f} s",
                         str(s.failed) + (f" ({s.first_error[:60]})" if s.failed else ""),
                         " + ".join(f"{c:.1f}" for c in s.cpu) or "-"])
    print(markdown_table(["N", "how", "wall", "vs direct", "slowest order", "failed", "Jackdaw CPU s"], rows))
    print(f"\ntarget: wall <= {TARGET_RATIO}x direct, every order valid within {DEADLINE:.0f} s; "
          f"worst ratio {worst:.2f}x -> {'MISSED' if missed else 'met'}")
    print(f"load generator: tests/herd.py, one thread per client, polling every {herd_driver.POLL:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200,500")
    parser.add_argument("--instances", default="1,2", help="Jackdaw instance counts to run per size")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.sizes.split(",")]
    instances = [int(n) for n in args.instances.split(",")]
    with tempfile.TemporaryDirectory(prefix="jackdaw-herd-") as tmp:
        workdir = Path(tmp)
        with Bind(workdir / "bind", {ZONE: ["* 60 IN A 127.0.0.1"]}, recursive=True) as bind:
            return report([run_size(n, workdir, bind, instances) for n in sizes])


if __name__ == "__main__":
    sys.exit(main())
