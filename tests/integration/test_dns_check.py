"""`jackdaw dns-check` against a real BIND, as an operator runs it: progress as it happens, the
timeout honoured, a dead port called refusing (not lagging), no removal reported for a value
the provider never wrote."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.testbed import Bind, free_port

ROOT = Path(__file__).resolve().parent.parent.parent


def dns_check(bind: Bind, tmp_path: Path, *argv: str, **extra: str) -> tuple[int, list[tuple[float, str]]]:
    """(exit status, [(seconds since start, line)]) of stdout and stderr, read as they come."""
    env = {**os.environ, "RELAY_DOMAIN": "relay.example.test", "ACME_EMAIL": "ops@example.test",
           "DNS_RESOLVER": bind.nameserver, "DNS_AUTHORITATIVE_PORT": str(bind.port),
           "DNS_PROPAGATION_INTERVAL": "0.2", "DATA_DIR": str(tmp_path / "data"), **bind.env(), **extra}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "jackdaw.cli", "dns-check", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = [(time.monotonic() - started, line.rstrip("\n")) for line in proc.stdout]
    return proc.wait(timeout=60), lines


def at(lines: list[tuple[float, str]], text: str) -> float:
    return next(t for t, line in lines if text in line)


def test_a_working_setup_reports_each_server_as_it_serves(bind: Bind, tmp_path: Path) -> None:
    status, lines = dns_check(bind, tmp_path, "host.example.test")
    text = "\n".join(line for _, line in lines)
    assert status == 0, text
    assert "ns1.example.test" in text and "serves it" in text and "removed the test value" in text
    assert text.endswith("OK: DNS-01 for host.example.test works")


def test_a_dead_authoritative_port_is_refusing_and_the_timeout_holds(bind: Bind, tmp_path: Path) -> None:
    status, lines = dns_check(bind, tmp_path, "--timeout", "3", "host.example.test",
                              DNS_AUTHORITATIVE_PORT=str(free_port()))
    text = "\n".join(line for _, line in lines)
    assert status == 1, text
    waiting = at(lines, "waiting up to 3 s")
    refusing = at(lines, "refusing")
    end = lines[-1][0]
    assert refusing - waiting < 1.0, text  # told while it waits, not at the end
    assert end - waiting < 3 + 1.0, text  # --timeout 3 is 3 s (plus the removal)
    assert "lagging" not in text and "not yet served" not in text, text
    assert "removed the test value" in text  # the write worked, so the value is removed
    assert "FAILED at propagation" in text and "refused by" in text


def test_a_failed_write_reports_no_removal(bind: Bind, tmp_path: Path) -> None:
    status, lines = dns_check(bind, tmp_path, "host.example.test", RFC2136_NAMESERVER=f"127.0.0.1:{free_port()}")
    text = "\n".join(line for _, line in lines)
    assert status == 1, text
    assert "FAILED at provider write" in text and "Connection refused" in text
    assert "remove" not in text, text  # it never wrote anything
