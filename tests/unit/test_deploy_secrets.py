"""The shipped unit and compose file keep the secrets out of the env file, naming exactly the
secret settings jackdaw.credentials reads (one list), and the README documents each of them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from jackdaw.credentials import SECRETS
from tests.unit.test_deploy import DEPLOY, INSTALL_DIR, ROOT, tool

CREDENTIAL_LINE = re.compile(r"^#(LoadCredential(?:Encrypted)?)=([A-Z0-9_]+):(\S+)$", re.M)


def test_the_unit_offers_a_credential_for_every_secret() -> None:
    lines = CREDENTIAL_LINE.findall((DEPLOY / "jackdaw.service").read_text())
    plain = {name: path for kind, name, path in lines if kind == "LoadCredential"}
    assert sorted(plain) == sorted(SECRETS)
    assert all(path == f"/etc/jackdaw/credentials/{name}" for name, path in plain.items())
    assert [name for kind, name, _ in lines if kind == "LoadCredentialEncrypted"] == ["RFC2136_TSIG_SECRET"]


def test_the_unit_with_its_credentials_uncommented_passes_verify(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", "apt-get install systemd")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for exe in ("jackdaw", "gunicorn"):
        (stubs / exe).write_text("#!/bin/sh\nexit 0\n")
        (stubs / exe).chmod(0o755)
    text = (DEPLOY / "jackdaw.service").read_text().replace(f"{INSTALL_DIR}/.venv/bin/", f"{stubs}/")
    text = text.replace(f"WorkingDirectory={INSTALL_DIR}", f"WorkingDirectory={tmp_path}")
    text = CREDENTIAL_LINE.sub(lambda m: m.group(0)[1:], text)
    assert text.count("\nLoadCredential=") == len(SECRETS)
    (tmp_path / "jackdaw.service").write_text(text)
    proc = subprocess.run([analyze, "verify", str(tmp_path / "jackdaw.service")], capture_output=True, text=True,
                          timeout=60)
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0 and output == "", output


def test_compose_passes_the_dns_secret_as_a_docker_secret() -> None:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    declared = data["secrets"]
    assert declared, "no secrets: the DNS credentials would sit in .env"
    for service in ("jackdaw-init", "jackdaw"):  # both read the settings
        spec = data["services"][service]
        assert sorted(spec["secrets"]) == sorted(declared)
        files = {k.removesuffix("_FILE"): v for k, v in spec["environment"].items() if k.endswith("_FILE")}
        assert sorted(files) == sorted(n.upper() for n in declared)
        for name, path in files.items():
            assert name in SECRETS and path == f"/run/secrets/{name.lower()}"
    for secret in declared.values():
        assert secret["file"].startswith("./secrets/")
    assert "/secrets/" in (ROOT / ".gitignore").read_text().split()
    assert "secrets" in (ROOT / ".dockerignore").read_text().split()
    example = (ROOT / ".env.example").read_text()
    assert not re.search(r"^RFC2136_TSIG_SECRET=", example, re.M)  # not both: a configuration error


@pytest.mark.parametrize("name", SECRETS)
def test_the_readme_documents_each_secret_and_its_sources(name: str) -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("### Secrets out of the env file")
    section = readme[start:readme.index("\n### ", start + 1)]
    assert f"`{name}`" in section
    for word in ("_FILE", "LoadCredential=", "systemd-creds", "CREDENTIALS_DIRECTORY", "check --show"):
        assert word in section
