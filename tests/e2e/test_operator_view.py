"""What the operator and a client see of a real relay under gunicorn: one log format
(LOG_FORMAT=json covers gunicorn's own error and access lines), and a client's short, fast
error when the upstream CA is down."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.clients import BIN, _client_env, certbot, check_certificate
from tests.e2e.conftest import ZONE
from tests.relay import Relay, relay_env
from tests.testbed import Bind, Pebble, free_port


def run_certbot(tmp_path: Path, directory_url: str, name: str, port: int) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN / "certbot"), "certonly", "--non-interactive", "--agree-tos", "-m", "admin@example.test",
            "--server", directory_url, "--config-dir", str(tmp_path / "config"), "--work-dir", str(tmp_path / "work"),
            "--logs-dir", str(tmp_path / "logs"), "--standalone", "--http-01-address", "127.0.0.1",
            "--http-01-port", str(port), "-d", name]
    return subprocess.run(argv, env=_client_env(), capture_output=True, text=True, timeout=120)


def wait_for_log(relay: Relay, pattern: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = relay.log_path.read_text(errors="replace")
        if pattern in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} not in the relay's log:\n{relay.log_tail()}")


def test_upstream_down_is_a_short_stable_error_at_once(tmp_path: Path, bind: Bind, pebble: Pebble) -> None:
    """Nothing listens at the upstream directory: certbot is told so within seconds, in words
    that name no internal host; the relay's log line with the same reference has the details."""
    challenge_port, dead_port = free_port(), free_port()
    env = relay_env(tmp_path / "relay", bind, pebble, challenge_port, ALLOWED_DOMAINS=ZONE,
                    LE_DIRECTORY=f"https://127.0.0.1:{dead_port}/directory")
    with Relay(tmp_path / "relay", env, ready_path="/healthz") as relay:
        wait_for_log(relay, "unreachable (reference")  # the periodic directory fetch noticed
        started = time.monotonic()
        proc = run_certbot(tmp_path / "certbot", relay.directory_url, f"down.{ZONE}", challenge_port)
        took = time.monotonic() - started
        log = relay.log_path.read_text(errors="replace")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert took < 15, (took, out)  # certbot's own start-up is most of it
    assert "the upstream CA cannot be reached; try again later" in out, out
    assert "HTTPSConnectionPool" not in out and str(dead_port) not in out, out
    reference = re.search(r"reference ([0-9a-f]{8})", out)
    assert reference is not None, out
    line = next(line for line in log.splitlines() if f"reference {reference.group(1)}" in line)
    assert str(dead_port) in line  # the full text is the operator's


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError as exc:
            raise AssertionError(f"not a JSON line: {line!r}") from exc
    return lines


def test_every_line_of_a_json_run_is_json(tmp_path: Path, bind: Bind, pebble: Pebble) -> None:
    """LOG_FORMAT=json with the access log on: gunicorn's start and stop lines, its access
    lines and Jackdaw's own, through a whole certbot issuance, are each one JSON object; the
    validation and issuance lines name the account and the client's address; alembic says
    nothing while the relay runs."""
    challenge_port = free_port()
    env = relay_env(tmp_path / "relay", bind, pebble, challenge_port, ALLOWED_DOMAINS=ZONE, LOG_FORMAT="json",
                    JACKDAW_ACCESS_LOG="-")
    name = f"json-logs.{ZONE}"
    relay = Relay(tmp_path / "relay", env)
    with relay:
        issued = certbot(tmp_path / "certbot", relay.directory_url, [name], standalone_port=challenge_port)
        check_certificate(issued, [name], pebble.roots_pem())
    # gunicorn's stdout and stderr (Relay keeps `db upgrade`'s apart), read after the stop
    lines = json_lines(relay.log_path.read_text())
    loggers = {line["logger"] for line in lines}
    assert {"gunicorn.error", "gunicorn.access", "jackdaw.ra.validation", "jackdaw.upstream.issuer"} <= loggers
    assert any(line["msg"].startswith("Starting gunicorn") for line in lines)
    assert any("Shutting down" in line["msg"] for line in lines)
    access = [line for line in lines if line["logger"] == "gunicorn.access"]
    finalize = next(line for line in access if line["path"].endswith("/finalize"))
    assert finalize["method"] == "POST" and finalize["status"] == 200 and finalize["remote"] == "127.0.0.1"
    assert "certbot" in finalize["user_agent"].lower()
    validated = next(line for line in lines if line["msg"].startswith(f"validated {name}"))
    issued_line = next(line for line in lines if "certificate issued" in line["msg"])
    for line in (validated, issued_line):
        assert line["client"] == "127.0.0.1" and line["account_id"] and line["order_id"], line
    assert validated["account_id"] == issued_line["account_id"]
    assert not [line for line in lines if line["logger"].startswith("alembic")]
