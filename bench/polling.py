"""Order polling and newOrders per second of Jackdaw under its own gunicorn.conf.py, on SQLite
and PostgreSQL, beside Pebble in the same run.

For each backend: a fresh Jackdaw (tests.relay.Relay: alembic upgrade, then gunicorn), one
account (ES256) and one pending order created with the `acme` library, then N client threads
(default 8) for a fixed time per workload, each with its own keep-alive connection (the lean
client of bench/lean.py: raw JWS, http.client), looping: HEAD newNonce, then a signed POST with
that fresh nonce. Workload "poll": a POST-as-GET of the order (counts when it answers 200 with an
order); "new-order": a newOrder for a name of its own each time (counts on 201 with an order; the
budget ledger runs, with limits no run reaches). Errors are counted by kind. While the load runs,
the resident memory of the gunicorn master plus its workers is sampled every 0.5 s from /proc;
the maximum summed RSS is reported with the PSS sum at that moment, which counts pages shared
between processes once and is the memory figure the target is checked against (several workers
fork from a preloading master: summed RSS would count its ~80 MB of code once per process). CPU
is read from /proc and os.times for the server tree, the client (this process, plus its client
processes with --procs), and the whole machine, so a noisy neighbour shows up as "machine busy"
minus the rest. "server CPU/poll" is the figure least disturbed by neighbours.

The `pebble` series runs the same client against Pebble (one order per thread: Pebble 2.4
deadlocks when two requests poll one order at once) as a same-run control: its rate shows what
the client can drive on this machine, so that the client is not what limits the relay's figures.
BIND and Pebble are started in any case (Jackdaw's settings need them); the relay never calls
Pebble during this benchmark.

Run from the repository root:  python -m bench.polling [--seconds 15] [--procs 2]
  [--workloads poll,new-order] [--relay-env JACKDAW_WORKERS=2 --relay-env JACKDAW_THREADS=2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.queues
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

if __package__ in (None, ""):  # `python bench/polling.py`: make `tests` and `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import josepy as jose
from acme import client as acme_client
from acme import crypto_util, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench._common import (
    BIN,
    ZONE,
    cpu_seconds,
    machine_cpu,
    markdown_table,
    pids_named,
    process_tree,
    pss_kib,
    rss_kib,
)
from bench.lean import Answer, LeanClient, NonceFailed
from tests.relay import Relay, postgres_database, relay_env
from tests.testbed import Bind, Pebble, free_port

JOSE = "application/jose+json"
BACKENDS = ("sqlite", "postgres", "pebble")
#: the issue's targets per workload: order polls/s and newOrders/s
TARGET_RATES = {"poll": 400.0, "new-order": 300.0}
WORKLOADS = tuple(TARGET_RATES)
WHAT = {"poll": "polls", "new-order": "newOrders"}
#: the memory of the whole gunicorn tree, measured as PSS: with several workers forked from a
#: preloading master, summed RSS counts every shared page once per process
TARGET_RSS_MB = 150.0
REFERENCES = [
    ("serles-acme 1.3 (2x4 gunicorn, SQLite)", "57-68/s", "172-184 MB"),
    ("acme2certifier 0.46", "44-46/s", ""),
    ("Pebble 2.4 (Go, in memory)", ">= 600/s", ""),
]


@dataclass
class Target:
    """Where the load goes: directory, a signed-in account and the orders to poll."""

    directory_url: str
    verify: bool | str
    key_pem: bytes  # PEM, so a Target can be handed to client processes
    kid: str
    new_nonce_url: str
    new_order_url: str
    order_urls: list[str]


@dataclass
class ThreadStats:
    late: float = 0.0  # seconds this thread started after the common start
    polls: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass
class Result:
    backend: str
    workload: str
    seconds: float
    polls: int
    errors: Counter[str]
    latencies: list[float]
    client_cpu: float
    late: float
    server_cpu: float | None
    db_cpu: float | None
    machine_busy: float
    rss_idle_mb: float | None
    rss_max_mb: float | None
    rss_max_detail: str = ""
    pss_at_max_mb: float | None = None
    profiles: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.polls / self.seconds


# -- setup: account and order with the acme library ------------------------------------------


def setup(directory_url: str, verify: bool | str, orders: int, label: str) -> Target:
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    # verify may be a CA bundle path: acme passes it to requests' `verify` unchanged
    net = acme_client.ClientNetwork(key, alg=jose.ES256, verify_ssl=cast(bool, verify),
                                    user_agent="jackdaw-bench-polling")
    directory = acme_client.ClientV2.get_directory(directory_url, net)
    client = acme_client.ClientV2(directory, net)
    regr = client.new_account(messages.NewRegistration.from_data(
        email="bench@example.test", terms_of_service_agreed=True))
    cert_key = ec.generate_private_key(ec.SECP256R1())
    key_pem = cert_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    order_urls = []
    for n in range(orders):
        csr = crypto_util.make_csr(key_pem, [f"poll-{label}-{n}-{os.getpid()}.{ZONE}"])
        order_urls.append(client.new_order(csr).uri)
    account_pem = key.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    return Target(directory_url, verify, account_pem, regr.uri, directory["newNonce"], directory["newOrder"],
                  order_urls)


# -- load --------------------------------------------------------------------------------------


def _problem_kind(resp: Answer) -> str:
    try:
        doc = resp.json()
        kind = str(doc.get("type", "")).rsplit(":", 1)[-1] or "no type"
    except (ValueError, AttributeError):
        kind = "not JSON"
    return f"{resp.status} {kind}"


def _is_order(doc: object) -> bool:
    return isinstance(doc, dict) and "status" in doc and "identifiers" in doc


def poller(target: Target, order_url: str, start_at: float, deadline: float, stats: ThreadStats,
           timeout: float, workload: str = "poll") -> None:
    """One closed-loop client thread: HEAD newNonce + a signed POST, until the deadline.

    workload "poll": a POST-as-GET of ``order_url`` (200 with the order counts); "new-order": a
    newOrder for a name of its own each time (201 with the order counts).
    """
    client = LeanClient(target.directory_url, target.key_pem, target.kid, target.verify, timeout)
    tag = f"{threading.get_ident() % 100000}-{os.getpid()}"
    time.sleep(max(0.0, start_at - time.monotonic()))
    stats.late = max(0.0, time.monotonic() - start_at)
    n = 0
    try:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                if workload == "poll":
                    resp, expected = client.post(target.new_nonce_url, order_url, None), 200
                else:
                    n += 1
                    payload = {"identifiers": [{"type": "dns", "value": f"o{n}-{tag}.{ZONE}"}]}
                    resp, expected = client.post(target.new_nonce_url, target.new_order_url, payload), 201
                if resp.status != expected:
                    stats.errors[_problem_kind(resp)] += 1
                    continue
                try:
                    doc = resp.json()
                except ValueError:
                    stats.errors[f"{expected} not JSON"] += 1
                    continue
                if not _is_order(doc):
                    stats.errors[f"{expected} not an order"] += 1
                    continue
            except NonceFailed as exc:
                stats.errors[str(exc)] += 1
                continue
            except OSError as exc:
                stats.errors[type(exc).__name__] += 1
                time.sleep(0.01)  # a refused connection must not spin
                continue
            stats.polls += 1
            stats.latencies.append(time.perf_counter() - start)
    finally:
        client.close()


class RssSampler:
    """Samples the summed VmRSS of a process tree every `interval` seconds in its own thread."""

    def __init__(self, root: int, interval: float = 0.5) -> None:
        self.root = root
        self.interval = interval
        self.max_kib = 0
        self.max_detail = ""
        self.pss_at_max_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def sample(self) -> int:
        per_pid = {pid: rss_kib(pid) for pid in process_tree(self.root)}
        total = sum(per_pid.values())
        self.samples += 1
        if total > self.max_kib:
            self.max_kib = total
            self.max_detail = " + ".join(f"{kib / 1024:.0f}" for kib in per_pid.values())
            self.pss_at_max_kib = sum(pss_kib(pid) for pid in per_pid)
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()


@contextmanager
def py_spy(pids: list[int], seconds: float, outdir: Path | None) -> Iterator[list[Path]]:
    """Optionally record each worker with py-spy (collapsed stacks) while the load runs."""
    outputs: list[Path] = []
    procs: list[subprocess.Popen[bytes]] = []
    if outdir is not None:
        outdir.mkdir(parents=True, exist_ok=True)
        for pid in pids:
            out = outdir / f"worker-{pid}.txt"
            procs.append(subprocess.Popen(
                [str(BIN / "py-spy"), "record", "--pid", str(pid), "--duration", str(max(1, int(seconds) - 1)),
                 "--rate", "200", "--nonblocking", "--gil", "--format", "raw", "--output", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            outputs.append(out)
    try:
        yield outputs
    finally:
        for proc in procs:
            try:
                proc.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_pollers(target: Target, first: int, threads: int, start_at: float, deadline: float,
                timeout: float, workload: str) -> list[ThreadStats]:
    """`threads` poller threads in this process; thread n polls order (first + n) mod len(orders)."""
    stats = [ThreadStats() for _ in range(threads)]
    pollers = [threading.Thread(target=poller, name=f"poller-{first + n}", daemon=True,
                                args=(target, target.order_urls[(first + n) % len(target.order_urls)], start_at,
                                      deadline, stats[n], timeout, workload))
               for n in range(threads)]
    for t in pollers:
        t.start()
    for t in pollers:
        t.join(timeout=max(0.0, deadline - time.monotonic()) + timeout + 10)
    return stats


def _client_process(target: Target, first: int, threads: int, start_at: float, deadline: float, timeout: float,
                    workload: str, out: multiprocessing.queues.Queue[tuple[list[ThreadStats], float]]) -> None:
    time.sleep(max(0.0, start_at - time.monotonic()))
    before = os.times()
    stats = run_pollers(target, first, threads, start_at, deadline, timeout, workload)
    after = os.times()
    out.put((stats, after.user + after.system - before.user - before.system))


def run_clients(target: Target, threads: int, procs: int, start_at: float, deadline: float, timeout: float,
                workload: str, on_start: Callable[[], None]) -> tuple[list[ThreadStats], float]:
    """All client threads, in this process (procs=1) or split over `procs` spawned processes.

    Every thread starts polling at `start_at` (monotonic clock, shared by all processes) and stops
    at `deadline`; `on_start` runs in this thread at `start_at` (CPU counters are read there).
    Returns the stats and the CPU seconds client processes used while polling (0 for procs=1).
    """
    if procs == 1:
        starter = threading.Timer(max(0.0, start_at - time.monotonic()), on_start)
        starter.start()
        try:
            return run_pollers(target, 0, threads, start_at, deadline, timeout, workload), 0.0
        finally:
            starter.join()
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.queues.Queue[tuple[list[ThreadStats], float]] = ctx.Queue()
    shares = [threads // procs + (1 if i < threads % procs else 0) for i in range(procs)]
    children = [ctx.Process(target=_client_process, daemon=True,
                            args=(target, sum(shares[:i]), n, start_at, deadline, timeout, workload, out))
                for i, n in enumerate(shares)]
    for child in children:
        child.start()
    stats: list[ThreadStats] = []
    cpu = 0.0
    try:
        time.sleep(max(0.0, start_at - time.monotonic()))
        on_start()
        for _ in children:
            child_stats, child_cpu = out.get(timeout=max(0.0, deadline - time.monotonic()) + timeout + 30)
            stats += child_stats
            cpu += child_cpu
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.kill()
                child.join()
    return stats, cpu


def load(backend: str, workload: str, target: Target, args: argparse.Namespace, server_pid: int | None,
         profile_dir: Path | None, other_server: int | None = None) -> Result:
    """Run the clients; `server_pid` is gunicorn's master (RSS, CPU), `other_server` a non-relay server (CPU)."""
    seconds = args.seconds
    tree = process_tree(server_pid) if server_pid else [other_server] if other_server else []
    db = pids_named("postgres") if backend == "postgres" else []
    workers = [pid for pid in tree if pid != server_pid]
    idle = sum(rss_kib(pid) for pid in tree) / 1024 if server_pid else None
    with ExitStack() as stack:
        sampler = stack.enter_context(RssSampler(server_pid)) if server_pid else None
        profiles = stack.enter_context(py_spy(workers, seconds, profile_dir and profile_dir / f"{backend}-{workload}"))
        # spawned client processes need time to import before the common start
        start_at = time.monotonic() + (3.0 if args.procs > 1 else 0.2)
        deadline = start_at + seconds
        counters: list[tuple[os.times_result, float, float, tuple[float, float], float]] = []

        def snapshot() -> None:
            counters.append((os.times(), cpu_seconds(tree), cpu_seconds(db), machine_cpu(), time.perf_counter()))

        stats, children_cpu = run_clients(target, args.threads, args.procs, start_at, deadline, args.timeout,
                                          workload, snapshot)
        snapshot()
        (cpu0, server0, db0, machine0, wall0), (cpu1, server1, db1, machine1, wall1) = counters
        wall = wall1 - wall0
    errors: Counter[str] = Counter()
    for s in stats:
        errors.update(s.errors)
    return Result(
        backend=backend,
        workload=workload,
        seconds=wall,
        polls=sum(s.polls for s in stats),
        errors=errors,
        latencies=sorted(x for s in stats for x in s.latencies),
        client_cpu=(cpu1.user + cpu1.system - cpu0.user - cpu0.system + children_cpu) / wall,
        late=max((s.late for s in stats), default=0.0),
        server_cpu=(server1 - server0) / wall if tree else None,
        db_cpu=(db1 - db0) / wall if db else None,
        machine_busy=(machine1[0] - machine0[0]) / (machine1[1] - machine0[1]) * (os.cpu_count() or 1),
        rss_idle_mb=idle,
        rss_max_mb=sampler.max_kib / 1024 if sampler else None,
        rss_max_detail=sampler.max_detail if sampler else "",
        pss_at_max_mb=sampler.pss_at_max_kib / 1024 if sampler else None,
        profiles=[str(p) for p in profiles],
    )


# -- series ------------------------------------------------------------------------------------


#: the budget ledger stays on (its bucket updates are part of every newOrder's cost), with
#: limits no run of this benchmark reaches
BENCH_BUDGET = {"BUDGET_NEW_ORDERS": "100000000/3h", "BUDGET_CERTS_PER_DOMAIN": "100000000/7d"}


def relay_series(backend: str, args: argparse.Namespace, workdir: Path, bind: Bind, pebble: Pebble) -> list[Result]:
    with ExitStack() as stack:
        extra = {"ALLOWED_DOMAINS": ZONE, "LOG_LEVEL": "WARNING", **BENCH_BUDGET}
        extra.update(kv.split("=", 1) for kv in args.relay_env)
        if backend == "postgres":
            extra["DATABASE_URL"] = stack.enter_context(postgres_database())
        env = relay_env(workdir / f"relay-{backend}", bind, pebble, free_port(), **extra)
        relay = stack.enter_context(Relay(workdir / f"relay-{backend}", env))
        target = setup(relay.directory_url, False, args.threads if args.order_per_thread else 1, backend)
        assert relay.proc is not None
        workers = [pid for pid in process_tree(relay.proc.pid) if pid != relay.proc.pid]
        print(f"[{backend}] gunicorn master {relay.proc.pid}, workers {workers}; {len(target.order_urls)} order(s);"
              f" {args.threads} threads for {args.seconds:.0f} s", flush=True)
        try:
            return [load(backend, workload, target, args, relay.proc.pid, args.profile) for workload in args.workloads]
        finally:
            tail = [line for line in relay.log_tail(400).splitlines() if "ERROR" in line or "Traceback" in line]
            if tail:
                print(f"[{backend}] relay log has {len(tail)} error line(s); last: {tail[-1]}", flush=True)


def pebble_series(args: argparse.Namespace, pebble: Pebble) -> list[Result]:
    # one order per thread: Pebble 2.4 deadlocks when two requests poll the same order
    target = setup(pebble.directory_url, str(pebble.ca_pem), args.threads, "pebble")
    assert pebble.proc is not None
    print(f"[pebble] pid {pebble.proc.pid}; {len(target.order_urls)} orders; {args.threads} threads for"
          f" {args.seconds:.0f} s", flush=True)
    return [load("pebble", workload, target, args, None, None, pebble.proc.pid) for workload in args.workloads]


# -- report ------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


def print_result(r: Result) -> None:
    errors = ", ".join(f"{kind}: {n}" for kind, n in r.errors.most_common()) or "none"
    server = f"{r.server_cpu:.2f} cores" if r.server_cpu is not None else "n/a"
    if r.db_cpu is not None:
        server += f" + all PostgreSQL processes {r.db_cpu:.2f} cores"
    rss = (f"max {r.rss_max_mb:.1f} MB ({r.rss_max_detail} MB master+workers; PSS then {r.pss_at_max_mb:.1f} MB),"
           f" idle {r.rss_idle_mb:.1f} MB" if r.rss_max_mb is not None and r.rss_idle_mb is not None else "n/a")
    tag, what = f"{r.backend} {r.workload}", WHAT[r.workload]
    if r.late > 0.2:
        print(f"[{tag}] WARNING: a client thread started {r.late:.1f} s late (machine too busy?)")
    print(f"[{tag}] {r.polls} {what} in {r.seconds:.1f} s = {r.rate:.1f} {what}/s"
          f" ({2 * r.rate:.0f} requests/s); errors: {errors}")
    print(f"[{tag}] latency per {what[:-1]} (HEAD + POST) p50 {pct(r.latencies, 0.5):.1f} ms,"
          f" p90 {pct(r.latencies, 0.9):.1f} ms, p99 {pct(r.latencies, 0.99):.1f} ms, max {pct(r.latencies, 1):.1f} ms")
    per_poll = f"; server CPU per {what[:-1]} {1000 * r.server_cpu / r.rate:.1f} ms" if r.server_cpu and r.rate else ""
    print(f"[{tag}] CPU: client (bench processes) {r.client_cpu:.2f} cores"
          f" ({100 * r.client_cpu / (os.cpu_count() or 1):.0f} % of the machine), server {server};"
          f" whole machine busy {r.machine_busy:.2f} of {os.cpu_count()} cores{per_poll}")
    print(f"[{tag}] RSS {rss}")
    for p in r.profiles:
        print(f"[{tag}] py-spy profile: {p}")
    print(flush=True)


def gunicorn_shape(args: argparse.Namespace) -> str:
    env = dict(kv.split("=", 1) for kv in args.relay_env)
    shape = f"{env.get('JACKDAW_WORKERS', '1')} workers x {env.get('JACKDAW_THREADS', '4')} threads"
    others = [kv for kv in args.relay_env if not kv.startswith(("JACKDAW_WORKERS=", "JACKDAW_THREADS="))]
    return shape + (f", {' '.join(others)}" if others else "")


def summary(results: list[Result], args: argparse.Namespace) -> str:
    rows = []
    for r in results:
        pebble = next((p for p in results if p.backend == "pebble" and p.workload == r.workload), None)
        name = {"sqlite": "Jackdaw, SQLite", "postgres": "Jackdaw, PostgreSQL", "pebble": "Pebble (control)"}[r.backend]
        name += f", {WHAT[r.workload]}"
        rate = f"**{r.rate:.0f}/s**" if r.backend != "pebble" else f"{r.rate:.0f}/s"
        vs = f"{r.rate / pebble.rate:.2f}x" if pebble and pebble.rate else ""
        rss = (f"{r.pss_at_max_mb:.0f} MB ({r.rss_max_mb:.0f} MB)"
               if r.rss_max_mb is not None and r.pss_at_max_mb is not None else "")
        cpu = f"{r.server_cpu:.2f}" if r.server_cpu is not None else ""
        if r.db_cpu is not None:
            cpu += f" (+{r.db_cpu:.2f} PostgreSQL)"
        ms = f"{1000 * r.server_cpu / r.rate:.1f} ms" if r.server_cpu and r.rate else ""
        rows.append([name, rate, vs, f"{pct(r.latencies, 0.5):.0f} ms", str(sum(r.errors.values())), rss, cpu, ms,
                     f"{r.client_cpu:.2f}", f"{r.machine_busy:.2f}"])
    rows += [[f"reference: {peer}, polls", rate, "", "", "", rss, "", "", "", ""] for peer, rate, rss in REFERENCES]
    clients = f"{args.threads} client threads" + (f" in {args.procs} processes" if args.procs > 1 else "")
    targets = ", ".join(f">= {TARGET_RATES[w]:.0f} {WHAT[w]}/s" for w in args.workloads)
    head = (f"Order polling (HEAD newNonce + signed POST-as-GET) and newOrders (HEAD newNonce + signed newOrder),"
            f" ES256, lean client (bench/lean.py), {clients}, {args.seconds:.0f} s each,"
            f" gunicorn.conf.py ({gunicorn_shape(args)}), {os.cpu_count()} cores shared with the client;"
            f" targets {targets} and <= {TARGET_RSS_MB:.0f} MB for the whole tree:\n")
    table = markdown_table(["server, workload", "per second", "vs Pebble", "p50", "errors", "memory: PSS (summed RSS)",
                            "server CPU (cores)", "server CPU/poll", "client CPU (cores)", "machine busy (cores)"],
                           rows)
    return head + "\n" + table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0, help="load duration per backend (default 15)")
    parser.add_argument("--threads", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--backends", default="sqlite,postgres,pebble",
                        help=f"comma-separated, from {','.join(BACKENDS)} (default all; pebble = control)")
    parser.add_argument("--procs", type=int, default=1,
                        help="client processes sharing the threads (default 1: one Python process, so the"
                             " client's GIL caps it near one core)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma-separated, from {','.join(WORKLOADS)} (default both)")
    parser.add_argument("--order-per-thread", action="store_true",
                        help="give each relay thread its own order (default: all poll one order)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per HTTP request, seconds (default 10)")
    parser.add_argument("--relay-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra relay setting, repeatable (e.g. JACKDAW_WORKERS=1 JACKDAW_THREADS=16)")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record each gunicorn worker with py-spy --gil (collapsed stacks of the thread"
                             " holding the GIL, i.e. where the Python CPU time goes) into this dir")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or any(b not in BACKENDS for b in backends):
        parser.error(f"--backends: choose from {', '.join(BACKENDS)}")
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if not args.workloads or any(w not in WORKLOADS for w in args.workloads):
        parser.error(f"--workloads: choose from {', '.join(WORKLOADS)}")
    if not 1 <= args.threads <= 64 or not 1 <= args.seconds <= 600 or not 1 <= args.procs <= args.threads:
        parser.error("--threads must be 1..64, --seconds 1..600 and --procs 1..threads")
    if any("=" not in kv for kv in args.relay_env):
        parser.error("--relay-env takes KEY=VALUE")
    if args.profile is not None and not (BIN / "py-spy").exists():
        parser.error(f"--profile needs py-spy: {BIN / 'pip'} install py-spy")

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="jackdaw-polling-") as tmp:
        workdir = Path(tmp)
        bind = Bind(workdir / "bind", {ZONE: ["* 60 IN A 127.0.0.1"]})
        pebble = Pebble(workdir / "pebble", bind.port, nonce_reject=0)
        try:
            # started from the main thread: testbed children get SIGTERM when their starting thread ends
            bind.start()
            pebble.start()
            for backend in backends:
                series = pebble_series(args, pebble) if backend == "pebble" else relay_series(
                    backend, args, workdir, bind, pebble)
                for result in series:
                    print_result(result)
                results += series
        finally:
            pebble.stop()
            bind.stop()

    print("--- summary (markdown) ---")
    print(summary(results, args))
    relay = [r for r in results if r.backend != "pebble"]
    relay_rss = [r.pss_at_max_mb for r in relay if r.pss_at_max_mb is not None]
    ok = all(r.rate >= TARGET_RATES[r.workload] for r in relay) and all(x <= TARGET_RSS_MB for x in relay_rss)
    rates = "; ".join(f"{WHAT[w]}/s >= {TARGET_RATES[w]:.0f}: "
                      + ", ".join(f"{r.rate:.0f}" for r in relay if r.workload == w) for w in args.workloads)
    print(f"\ntargets: {rates}; memory (PSS) <= {TARGET_RSS_MB:.0f} MB: {', '.join(f'{x:.0f}' for x in relay_rss)}"
          f" -> {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
