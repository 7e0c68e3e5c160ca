"""A relay backed up while it runs comes back from the backup, on SQLite and PostgreSQL.

certbot registers (with an EAB key) and gets a certificate from a running relay; `jackdaw backup`
copies its database meanwhile; the relay is gone, and a new one, restored with `jackdaw restore`
into a fresh DATA_DIR / database, serves the same client account (certbot, with its account
kept, gets a second certificate without registering again) on the same upstream account (URL
and key, nothing registered upstream again) and lists the first certificate. The new relay
reads its DNS and passphrase secrets from a systemd-style credentials directory and a _FILE.
"""

from __future__ import annotations

import json
import stat
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.clients import certbot, check_certificate
from tests.e2e.conftest import ZONE
from tests.relay import Relay, postgres_database, relay_env
from tests.testbed import Bind, Pebble, free_port

PASSPHRASE = "backups keep the passphrase apart"


def status(relay: Relay) -> dict[str, object]:
    proc = relay.cli("status", "--json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, object] = json.loads(proc.stdout)
    return doc


# SQLite, the default install, end to end; tests/integration/test_backup.py restores both databases
@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_relay_backed_up_while_it_runs_comes_back_from_the_backup(
        backend: str, tmp_path: Path, bind: Bind, pebble: Pebble) -> None:
    challenge_port, port = free_port(), free_port()
    names = [f"backup-one-{backend}.{ZONE}"]
    with ExitStack() as stack:
        extra = {"ALLOWED_DOMAINS": ZONE, "EAB_REQUIRED": "true"}
        old_db: dict[str, str] = {}
        new_db: dict[str, str] = {}
        if backend == "postgres":
            old_db = {"DATABASE_URL": stack.enter_context(postgres_database())}
            new_db = {"DATABASE_URL": stack.enter_context(postgres_database())}
        old_env = relay_env(tmp_path / "old", bind, pebble, challenge_port, **extra, **old_db,
                            UPSTREAM_KEY_PASSPHRASE=PASSPHRASE)
        old = stack.enter_context(Relay(tmp_path / "old", old_env, port=port))
        made = old.cli("eab", "add", "team", "--allow", f"*.{ZONE}", "--json")
        assert made.returncode == 0, made.stderr
        key = json.loads(made.stdout)
        first = certbot(tmp_path / "certbot", old.directory_url, names, standalone_port=challenge_port,
                        extra=["--eab-kid", key["kid"], "--eab-hmac-key", key["hmac_key"]])
        leaf = check_certificate(first, names, pebble.roots_pem())
        upstream = status(old)["upstream"]
        assert isinstance(upstream, dict) and upstream["account_url"] and upstream["key_encrypted"]

        backup = tmp_path / "jackdaw.backup"
        done = old.cli("backup", str(backup))  # the relay keeps running
        assert done.returncode == 0, done.stderr
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600
        old.stop()

        # the new host: secrets out of the environment, a fresh DATA_DIR (and database)
        credentials = tmp_path / "credentials"
        credentials.mkdir(mode=0o700)
        new_env = relay_env(tmp_path / "new", bind, pebble, challenge_port, **extra, **new_db)
        (credentials / "RFC2136_TSIG_SECRET").write_text(new_env.pop("RFC2136_TSIG_SECRET") + "\n")
        (tmp_path / "passphrase").write_text(PASSPHRASE + "\n")
        new_env.update(CREDENTIALS_DIRECTORY=str(credentials),
                       UPSTREAM_KEY_PASSPHRASE_FILE=str(tmp_path / "passphrase"))
        new = Relay(tmp_path / "new", new_env, port=port)
        Path(new_env["DATA_DIR"]).mkdir(mode=0o700, parents=True)
        restored = new.cli("restore", str(backup))
        assert restored.returncode == 0, restored.stderr
        stack.enter_context(new)

        account = ("directory_url", "account_url", "key_stored", "key_encrypted")
        back = status(new)["upstream"]
        assert isinstance(back, dict)
        # the same account URL, the key as stored (the directory's meta ages meanwhile)
        assert {k: back[k] for k in account} == {k: upstream[k] for k in account}
        listed = new.cli("certificates", "--json")
        assert [c["serial"] for c in json.loads(listed.stdout)] == [format(leaf.serial_number, "x")]
        more = [f"backup-two-{backend}.{ZONE}"]  # certbot's own account, restored with the rest
        second = certbot(tmp_path / "certbot", new.directory_url, more, standalone_port=challenge_port)
        check_certificate(second, more, pebble.roots_pem())
        after = status(new)["upstream"]
        assert isinstance(after, dict) and {k: after[k] for k in account} == {k: upstream[k] for k in account}
        log = new.log_path.read_text()
        assert "registered upstream account" not in log and "Traceback" not in log
