"""`jackdaw check --show` with the secrets out of the env file: in a systemd credentials
directory and a NAME_FILE, each shown with where it came from and never with its value; the
same secret in two places stops the check in one line (exit 2). The real CLI, a fresh process."""

from __future__ import annotations

from pathlib import Path

from tests.integration.test_cli_config import REQUIRED, env_file, jackdaw, one_line

TSIG = "c2VjcmV0LWZyb20tc3lzdGVtZC1jcmVkZW50aWFs"
TOKEN = "Zt0kenFromADockerSecret9"
HMAC = "Qh4cKeyFromTheCA0123456789"


def _secret(path: Path, value: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


def test_check_show_says_where_each_secret_came_from(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    _secret(credentials / "RFC2136_TSIG_SECRET", TSIG)
    _secret(credentials / "LE_EAB_HMAC_KEY", HMAC)
    token = _secret(tmp_path / "secrets" / "status_token", TOKEN)
    settings = {**REQUIRED, "DNS_PROVIDER": "rfc2136", "UPSTREAM_CHALLENGE": "dns-01",
                "RFC2136_NAMESERVER": "192.0.2.53:5353", "RFC2136_TSIG_KEY": "jackdaw", "LE_EAB_KID": "kid-1",
                "STATUS_TOKEN_FILE": str(token), "DATA_DIR": str(tmp_path / "data")}
    path = env_file(tmp_path / "jackdaw.env", settings)
    assert TSIG not in path.read_text()  # the env file holds no secret

    proc = jackdaw(tmp_path, "--env-file", str(path), "check", "--show",
                   env={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for value in (TSIG, TOKEN, HMAC):
        assert value not in out and value[:6] not in out
    lines = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines() if line.startswith("  ")}
    assert lines["RFC2136_TSIG_SECRET"] == f"c2…  (from credential {credentials}/RFC2136_TSIG_SECRET)"
    assert lines["le_eab_hmac_key"] == f"Qh…  (from credential {credentials}/LE_EAB_HMAC_KEY)"
    assert lines["status_token"] == f"Zt…  (from file {token})"
    assert lines["le_eab_kid"] == "kid-1"  # not a secret: no source, no mask
    assert lines["upstream_key_passphrase"] == "(unset)"

    # the credential and the env file both give the TSIG secret: which one? Exit 2, one line
    conflict = env_file(tmp_path / "both.env", {**settings, "RFC2136_TSIG_SECRET": "b3RoZXI="})
    proc = jackdaw(tmp_path, "--env-file", str(conflict), "check",
                   env={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert proc.returncode == 2
    assert one_line(proc) == ("configuration error: RFC2136_TSIG_SECRET: set either RFC2136_TSIG_SECRET or the "
                              f"credential {credentials}/RFC2136_TSIG_SECRET, not both")
