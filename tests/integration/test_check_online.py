"""`jackdaw check --online` against a real BIND and Pebble, and against what is down or wrong.

The good configuration passes every check; each broken one fails its own check (exit 1) and
names what is wrong: PostgreSQL not listening, the CA unreachable, a bundle that is garbage or
does not hold the CA's root, a wrong TSIG secret, a DNS server on a dead port.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jackdaw import migrate
from tests.relay import ROOT
from tests.testbed import Bind, Pebble, free_port


@pytest.fixture(scope="module")
def pebble(bind: Bind, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    with Pebble(tmp_path_factory.mktemp("pebble"), bind.port) as server:
        yield server


@pytest.fixture
def good(bind: Bind, pebble: Pebble, tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'jackdaw.db'}"
    migrate.upgrade(url)
    return {
        "RELAY_DOMAIN": "relay.example.test",
        "ACME_EMAIL": "ops@example.test",
        "ALLOWED_DOMAINS": "example.test",
        "DNS_PROVIDER": "rfc2136",
        **bind.env(),
        "LE_DIRECTORY": pebble.directory_url,
        "UPSTREAM_CA_BUNDLE": str(pebble.ca_pem),
        "DNS_RESOLVER": bind.nameserver,
        "DNS_AUTHORITATIVE_PORT": str(bind.port),
        "DATABASE_URL": url,
    }


#: check -> the settings its line names ("name (KEY, KEY): detail"), from the last check_online
NAMED: dict[str, str] = {}


def check_online(tmp_path: Path, env: dict[str, str]) -> tuple[int, dict[str, str]]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("REQUESTS_CA", "SSL_CERT", "JACKDAW_ENV")) and k not in ("DATA_DIR", "DATABASE_URL")}
    proc = subprocess.run([sys.executable, "-m", "jackdaw.cli", "check", "--online"], cwd=tmp_path,
                          env={**base, "PYTHONPATH": str(ROOT), **env}, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines: dict[str, str] = {}
    NAMED.clear()
    for line in (proc.stdout + proc.stderr).splitlines():
        verdict, _, rest = line.partition("  ")
        if verdict in ("OK", "FAIL"):
            name, _, detail = rest.strip().partition(": ")
            name, _, keys = name.partition(" (")
            lines[name] = f"{verdict}: {detail}"
            NAMED[name] = keys.rstrip(")")
    return proc.returncode, lines


def test_a_working_configuration_passes(tmp_path: Path, good: dict[str, str]) -> None:
    rc, lines = check_online(tmp_path, good)
    assert rc == 0, lines
    assert set(lines) == {"database", "UPSTREAM_CA_BUNDLE", "upstream directory", "DNS provider rfc2136",
                          "resolver", "authoritative servers"}
    assert all(v.startswith("OK") for v in lines.values()), lines
    assert "schema at head" in lines["database"] and "accepts TSIG key" in lines["DNS provider rfc2136"]
    assert "zone example.test" in lines["resolver"]


def test_postgresql_not_listening(tmp_path: Path, good: dict[str, str]) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/jackdaw"
    rc, lines = check_online(tmp_path, {**good, "DATABASE_URL": url})
    assert rc == 1 and lines["database"].startswith("FAIL") and "refused" in lines["database"]
    assert lines["upstream directory"].startswith("OK")
    assert NAMED["database"] == "DATABASE_URL"


def test_no_database_named(tmp_path: Path, good: dict[str, str]) -> None:
    env = {k: v for k, v in good.items() if k != "DATABASE_URL"}
    rc, lines = check_online(tmp_path, env)
    assert rc == 1 and NAMED["database"] == "DATA_DIR" and "neither DATA_DIR nor DATABASE_URL" in lines["database"]
    assert not (tmp_path / "data").exists()


def test_no_database_yet_is_reported_not_created(tmp_path: Path, good: dict[str, str]) -> None:
    rc, lines = check_online(tmp_path, {**good, "DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"})
    assert rc == 1 and "jackdaw db upgrade" in lines["database"]
    assert not (tmp_path / "new.db").exists()


def test_unreachable_ca(tmp_path: Path, good: dict[str, str]) -> None:
    url = f"https://127.0.0.1:{free_port()}/dir"
    rc, lines = check_online(tmp_path, {**good, "LE_DIRECTORY": url})
    assert rc == 1 and lines["upstream directory"] == f"FAIL: {url}: cannot connect"
    assert NAMED["upstream directory"] == "LE_DIRECTORY"  # what to change: the URL alone did not say


def test_bundle_without_the_cas_root(tmp_path: Path, good: dict[str, str]) -> None:
    """A readable, parseable bundle that does not hold the CA's root: TLS verification fails."""
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    rc, lines = check_online(tmp_path, {**good, "UPSTREAM_CA_BUNDLE": str(other)})
    assert rc == 1 and lines["UPSTREAM_CA_BUNDLE"].startswith("OK")
    assert "TLS verification failed" in lines["upstream directory"]


@pytest.mark.parametrize("content", [b"", b"not a certificate\n", b"-----BEGIN CERTIFICATE-----\nZm9v\n"])
def test_garbage_bundle(tmp_path: Path, good: dict[str, str], content: bytes) -> None:
    garbage = tmp_path / "bundle.pem"
    garbage.write_bytes(content)
    rc, lines = check_online(tmp_path, {**good, "UPSTREAM_CA_BUNDLE": str(garbage)})
    assert rc == 1 and lines["UPSTREAM_CA_BUNDLE"].startswith("FAIL") and "no PEM certificate" in lines[
        "UPSTREAM_CA_BUNDLE"]


def test_unreadable_bundle(tmp_path: Path, good: dict[str, str]) -> None:
    """As the unit's user would meet a root-only file (root reads anything: run as nobody)."""
    setpriv = "/usr/bin/setpriv"
    if os.geteuid() != 0 or not Path(setpriv).exists():
        pytest.fail("needs root and setpriv (util-linux) to run the check as another user")
    bundle = tmp_path / "root-only.pem"
    bundle.write_bytes(Path(good["UPSTREAM_CA_BUNDLE"]).read_bytes())
    bundle.chmod(0o600)
    tmp_path.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REQUESTS_CA", "SSL_CERT", "JACKDAW_ENV"))}
    env.update({**good, "UPSTREAM_CA_BUNDLE": str(bundle), "PYTHONPATH": str(ROOT),
                "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x"})
    proc = subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-m",
                           "jackdaw.cli", "check", "--online"], cwd="/", env=env, capture_output=True, text=True,
                          timeout=120)
    # refused as a setting (exit 2), as gunicorn would refuse to start on it
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
    assert proc.stderr.strip() == f"configuration error: UPSTREAM_CA_BUNDLE: cannot read '{bundle}': Permission denied"


def test_wrong_tsig_secret(tmp_path: Path, good: dict[str, str]) -> None:
    rc, lines = check_online(tmp_path, {**good, "RFC2136_TSIG_SECRET": "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldA=="})
    assert rc == 1 and "BADSIG" in lines["DNS provider rfc2136"], lines
    assert NAMED["DNS provider rfc2136"].startswith("DNS_PROVIDER, ") and "RFC2136_TSIG_SECRET" in NAMED[
        "DNS provider rfc2136"]


def test_dns_servers_on_a_dead_port(tmp_path: Path, good: dict[str, str]) -> None:
    dead = f"127.0.0.1:{free_port()}"
    rc, lines = check_online(tmp_path, {**good, "DNS_RESOLVER": dead, "RFC2136_NAMESERVER": dead})
    assert rc == 1
    assert lines["resolver"].startswith("FAIL") and dead in lines["resolver"]
    assert lines["DNS provider rfc2136"].startswith("FAIL") and dead in lines["DNS provider rfc2136"]
    assert NAMED["resolver"] == "DNS_RESOLVER" and "RFC2136_NAMESERVER" in NAMED["DNS provider rfc2136"]
    rc, lines = check_online(tmp_path, {**good, "DNS_AUTHORITATIVE_PORT": dead.split(":")[1]})
    assert rc == 1 and lines["resolver"].startswith("OK") and lines["authoritative servers"].startswith("FAIL")
    assert NAMED["authoritative servers"] == "DNS_AUTHORITATIVE_PORT"
