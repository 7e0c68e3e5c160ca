"""jackdaw.relaycert without a CA: the placeholder, atomic installs (key first), what needs a
renewal, the reload hooks and the settings."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from jackdaw.dns.base import ConfigError
from jackdaw.relaycert import CertStore, reload_server
from jackdaw.relaycert.files import atomic_write, key_pem, new_key, placeholder
from jackdaw.relaycert.job import ReloadFailed, job_subject
from jackdaw.settings import Settings

DOMAIN = "relay.example.test"
REQUIRED = {"RELAY_DOMAIN": DOMAIN, "ACME_EMAIL": "ops@example.test", "DNS_PROVIDER": "rfc2136"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def issued(ca: trustme.CA, name: str, days: float) -> tuple[bytes, bytes]:
    """(fullchain, key) from a test CA, valid for ``days`` more days."""
    leaf = ca.issue_cert(name, not_after=datetime.now(UTC) + timedelta(days=days))
    return b"".join(b.bytes() for b in leaf.cert_chain_pems), leaf.private_key_pem.bytes()


@pytest.fixture
def store(tmp_path: Path) -> CertStore:
    return CertStore(tmp_path / "tls", DOMAIN)


def test_placeholder_written_when_nothing_is_there(store: CertStore) -> None:
    assert store.status().problem == "no certificate yet (fullchain.pem missing)"
    assert store.ensure_placeholder() is True
    status = store.status()
    assert status.usable and status.placeholder and status.covers_domain
    assert status.subject == status.issuer == f"CN={DOMAIN},O=Jackdaw placeholder"
    assert status.renewal_reason(30) == "only the self-signed placeholder is installed"
    assert mode(store.privkey) == 0o600 and mode(store.fullchain) == 0o644
    assert store.ensure_placeholder() is False, "a usable certificate is never replaced"
    assert sorted(p.name for p in store.directory.iterdir()) == [".lock", "fullchain.pem", "privkey.pem"]


@pytest.mark.parametrize(("damage", "problem"), [
    ("missing-key", "no certificate yet (privkey.pem missing)"),
    ("foreign-key", "privkey.pem does not belong to fullchain.pem"),
    ("garbage-cert", "fullchain.pem holds no PEM certificate"),
    ("garbage-key", "privkey.pem holds no usable private key"),
])
def test_unusable_files_are_replaced_by_a_placeholder(store: CertStore, damage: str, problem: str) -> None:
    store.ensure_placeholder()
    if damage == "missing-key":
        store.privkey.unlink()
    elif damage == "foreign-key":
        store.privkey.write_bytes(key_pem(new_key()))
    elif damage == "garbage-cert":
        store.fullchain.write_text("not a certificate\n")
    else:
        store.privkey.write_text("not a key\n")
    assert (store.status().problem or "").startswith(problem)
    assert store.ensure_placeholder() is True
    assert store.status().usable


def test_renewal_reasons(store: CertStore) -> None:
    ca = trustme.CA()
    store.install(*reversed(issued(ca, DOMAIN, days=60)))
    status = store.status()
    assert status.usable and not status.placeholder
    assert status.issuer != status.subject
    assert 59 < (status.days_left() or 0) <= 60
    assert status.renewal_reason(30) is None
    assert (status.renewal_reason(61) or "").startswith("the certificate expires in 60.0 days")

    store.install(*reversed(issued(ca, DOMAIN, days=10)))
    assert (store.status().renewal_reason(30) or "").startswith("the certificate expires in 10.0 days")

    store.install(*reversed(issued(ca, "other.example.test", days=60)))
    assert store.status().renewal_reason(30) == (
        "the certificate does not cover relay.example.test (it has other.example.test)")


def test_install_writes_the_key_first_each_file_atomically(store: CertStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.ensure_placeholder()
    replaced: list[str] = []
    real_replace = os.replace

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        replaced.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    chain, key = issued(trustme.CA(), DOMAIN, days=60)
    store.install(key, chain)
    assert replaced == [".reload-pending", "privkey.pem", "fullchain.pem"]
    assert store.fullchain.read_bytes() == chain and store.privkey.read_bytes() == key
    assert mode(store.privkey) == 0o600
    assert store.reload_pending()
    store.reloaded()
    assert not store.reload_pending()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "privkey.pem"
    atomic_write(target, b"old", 0o600)

    def fail(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"new", 0o600)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["privkey.pem"]


def test_key_mode_ignores_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        atomic_write(tmp_path / "fullchain.pem", b"x", 0o644)
    finally:
        os.umask(old)
    assert mode(tmp_path / "fullchain.pem") == 0o644


def test_force_marker_survives_a_newer_request(store: CertStore) -> None:
    assert store.force_token() is None
    store.request_force()
    first = store.force_token()
    assert first is not None
    store.request_force()  # asked again while the first renewal ran
    store.clear_force(first)
    assert store.force_token() is not None
    token = store.force_token()
    assert token is not None
    store.clear_force(token)
    assert store.force_token() is None


def test_placeholder_validity() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    cert = x509.load_pem_x509_certificate(placeholder(DOMAIN, now)[0])
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


def test_job_subject_fits_the_columns() -> None:
    assert job_subject(DOMAIN) == DOMAIN
    long_name = "a" * 40 + ".example.test"
    assert len(job_subject(long_name)) == 32
    assert job_subject(long_name) != job_subject("b" * 40 + ".example.test")


# -- reload ------------------------------------------------------------------------------


def settings(**extra: str) -> Settings:
    return Settings.parse({**REQUIRED, **extra})


def test_reload_command_runs_without_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "reloaded by me"
    reload_server(settings(RELAY_CERT_RELOAD_COMMAND=f"touch '{marker}'"))
    assert marker.exists()


def test_failing_reload_command_output_is_kept() -> None:
    script = "import sys; sys.stderr.write('nope'); sys.exit(3)"
    with pytest.raises(ReloadFailed, match="exited with 3: nope"):
        reload_server(settings(RELAY_CERT_RELOAD_COMMAND=f'{sys.executable} -c "{script}"'))


def test_missing_reload_command_is_reported() -> None:
    with pytest.raises(ReloadFailed, match="/nonexistent/reload"):
        reload_server(settings(RELAY_CERT_RELOAD_COMMAND="/nonexistent/reload now"))


def test_reload_pidfile_gets_sighup(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        pidfile = tmp_path / "nginx.pid"
        pidfile.write_text(f"{child.pid}\n")
        reload_server(settings(RELAY_CERT_RELOAD_PIDFILE=str(pidfile)))
        assert child.wait(timeout=5) == -signal.SIGHUP
    finally:
        child.kill()
        child.wait()


def test_unreadable_pidfile_is_reported(tmp_path: Path) -> None:
    (tmp_path / "empty.pid").write_text("")
    with pytest.raises(ReloadFailed, match=r"empty\.pid"):
        reload_server(settings(RELAY_CERT_RELOAD_PIDFILE=str(tmp_path / "empty.pid")))
    with pytest.raises(ReloadFailed, match=r"missing\.pid"):
        reload_server(settings(RELAY_CERT_RELOAD_PIDFILE=str(tmp_path / "missing.pid")))


# -- settings ----------------------------------------------------------------------------


def test_relay_cert_defaults() -> None:
    s = settings(DATA_DIR="/var/lib/jackdaw")
    assert s.relay_cert_enabled is True
    assert s.relay_cert_path == Path("/var/lib/jackdaw/tls")
    assert (s.relay_cert_renew_days, s.relay_cert_check_interval) == (30, 86400.0)
    assert s.relay_cert_reload_command == () and s.relay_cert_reload_pidfile is None


def test_relay_cert_values() -> None:
    s = settings(RELAY_CERT_ENABLED="false", RELAY_CERT_DIR="/etc/jackdaw/tls", RELAY_CERT_RENEW_DAYS="20",
                 RELAY_CERT_CHECK_INTERVAL="3600", RELAY_CERT_RELOAD_COMMAND="nginx -s reload -c '/etc/my nginx.conf'",
                 RELAY_CERT_RELOAD_PIDFILE="/run/nginx.pid")
    assert s.relay_cert_enabled is False
    assert s.relay_cert_path == Path("/etc/jackdaw/tls")
    assert (s.relay_cert_renew_days, s.relay_cert_check_interval) == (20, 3600.0)
    assert s.relay_cert_reload_command == ("nginx", "-s", "reload", "-c", "/etc/my nginx.conf")
    assert s.relay_cert_reload_pidfile == Path("/run/nginx.pid")


@pytest.mark.parametrize(("key", "value"), [
    ("RELAY_CERT_ENABLED", "maybe"),
    ("RELAY_CERT_RENEW_DAYS", "0"),
    ("RELAY_CERT_RENEW_DAYS", "400"),
    ("RELAY_CERT_CHECK_INTERVAL", "soon"),
    ("RELAY_CERT_RELOAD_COMMAND", "nginx -s 'reload"),
])
def test_bad_relay_cert_settings_are_named(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        settings(**{key: value})
