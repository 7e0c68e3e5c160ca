"""Every secret setting from NAME, NAME_FILE (Docker secrets) or a systemd credential
($CREDENTIALS_DIRECTORY/NAME), through jackdaw.credentials alone; two sources at once are a
configuration error; the real providers and settings fields see the value wherever it came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jackdaw import credentials, logs, serverlog
from jackdaw.credentials import PATH_SECRETS, SECRETS
from jackdaw.dns.registry import build_provider
from jackdaw.envparse import ConfigError
from jackdaw.ops.config import effective_config, mask
from jackdaw.settings import Settings

BASE = {"RELAY_DOMAIN": "relay.example.test", "ACME_EMAIL": "ops@example.test", "DNS_PROVIDER": "rfc2136",
        "RFC2136_NAMESERVER": "192.0.2.53", "RFC2136_TSIG_KEY": "jackdaw"}
VALUE_SECRETS = [n for n in SECRETS if n not in PATH_SECRETS]


def _file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", VALUE_SECRETS)
def test_each_secret_from_its_file_with_the_newline_stripped(name: str, tmp_path: Path) -> None:
    path = _file(tmp_path / "secret", f"{name.lower()}-value-0123456789\n")
    env, sources = credentials.resolve({f"{name}_FILE": str(path)})
    assert env[name] == f"{name.lower()}-value-0123456789"
    assert f"{name}_FILE" not in env
    assert sources == {name: f"file {path}"}


@pytest.mark.parametrize("name", VALUE_SECRETS)
def test_each_secret_from_a_systemd_credential(name: str, tmp_path: Path) -> None:
    directory = tmp_path / "credentials"
    _file(directory / name, f"{name.lower()}-from-systemd\n")
    env, sources = credentials.resolve({"CREDENTIALS_DIRECTORY": str(directory)})
    assert env[name] == f"{name.lower()}-from-systemd"
    assert sources == {name: f"credential {directory / name}"}
    assert "CREDENTIALS_DIRECTORY" not in env  # parsing the result again finds each secret once


def test_a_plain_value_stays_and_says_env() -> None:
    env, sources = credentials.resolve({"STATUS_TOKEN": "t" * 20, "RFC2136_TSIG_SECRET": ""})
    assert env["STATUS_TOKEN"] == "t" * 20 and sources == {"STATUS_TOKEN": "env"}
    assert "RFC2136_TSIG_SECRET" not in env  # empty is unset


def test_a_secret_file_setting_becomes_the_path(tmp_path: Path) -> None:
    """ACME_DNS_CREDENTIALS names a JSON file of accounts: a credential or _FILE is that file."""
    directory = tmp_path / "credentials"
    _file(directory / "ACME_DNS_CREDENTIALS", "{}")
    assert credentials.read({"CREDENTIALS_DIRECTORY": str(directory)}, "ACME_DNS_CREDENTIALS") == \
        credentials.Secret(str(directory / "ACME_DNS_CREDENTIALS"), f"credential {directory / 'ACME_DNS_CREDENTIALS'}")
    assert credentials.read({"ACME_DNS_CREDENTIALS_FILE": "/run/secrets/acme"}, "ACME_DNS_CREDENTIALS") == \
        credentials.Secret("/run/secrets/acme", "file /run/secrets/acme")


@pytest.mark.parametrize(("given", "message"), [
    ({"env"}, None),
    ({"env", "file"}, "STATUS_TOKEN: set either STATUS_TOKEN or STATUS_TOKEN_FILE, not both"),
    ({"env", "credential"}, "STATUS_TOKEN: set either STATUS_TOKEN or the credential {dir}/STATUS_TOKEN, not both"),
    ({"file", "credential"}, "STATUS_TOKEN: set either STATUS_TOKEN_FILE or the credential {dir}/STATUS_TOKEN, "
                             "not both"),
    ({"env", "file", "credential"}, "STATUS_TOKEN: set one of STATUS_TOKEN, STATUS_TOKEN_FILE or the credential "
                                    "{dir}/STATUS_TOKEN, not all of them"),
], ids=["one", "env+file", "env+credential", "file+credential", "all"])
def test_two_sources_are_a_configuration_error(given: set[str], message: str | None, tmp_path: Path) -> None:
    directory = tmp_path / "credentials"
    env: dict[str, str] = {}
    if "env" in given:
        env["STATUS_TOKEN"] = "a" * 20
    if "file" in given:
        env["STATUS_TOKEN_FILE"] = str(_file(tmp_path / "token", "b" * 20))
    if "credential" in given:
        _file(directory / "STATUS_TOKEN", "c" * 20)
        env["CREDENTIALS_DIRECTORY"] = str(directory)
    if message is None:
        assert credentials.read(env, "STATUS_TOKEN").value == "a" * 20
        return
    with pytest.raises(ConfigError) as raised:
        credentials.read(env, "STATUS_TOKEN")
    assert str(raised.value) == message.format(dir=directory)
    assert "a" * 20 not in str(raised.value) and "b" * 20 not in str(raised.value)


def test_unreadable_and_empty_files_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^RFC2136_TSIG_SECRET_FILE: cannot read '.*missing': No such file"):
        credentials.resolve({"RFC2136_TSIG_SECRET_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match=r"^PORKBUN_API_KEY_FILE: '.*empty' is empty"):
        credentials.resolve({"PORKBUN_API_KEY_FILE": str(_file(tmp_path / "empty", "\n"))})
    _file(tmp_path / "creds" / "CLOUDFLARE_API_TOKEN", "")
    with pytest.raises(ConfigError, match=r"^CLOUDFLARE_API_TOKEN: '.*' is empty"):
        credentials.resolve({"CREDENTIALS_DIRECTORY": str(tmp_path / "creds")})


def test_settings_fields_read_through_files_and_credentials(tmp_path: Path) -> None:
    directory = tmp_path / "credentials"
    _file(directory / "UPSTREAM_KEY_PASSPHRASE", "correct horse\n")
    _file(directory / "LE_EAB_HMAC_KEY", "hmac-key-from-the-ca\n")
    _file(directory / "RFC2136_TSIG_SECRET", "c2VjcmV0\n")
    token = _file(tmp_path / "token", "s" * 32 + "\n")
    webhook = _file(tmp_path / "webhook", "webhook-signing-secret\n")
    settings = Settings.parse({**BASE, "CREDENTIALS_DIRECTORY": str(directory), "LE_EAB_KID": "kid-1",
                               "STATUS_TOKEN_FILE": str(token), "NOTIFY_WEBHOOK_URL": "https://hooks.example.test/x",
                               "NOTIFY_WEBHOOK_SECRET_FILE": str(webhook), "NOTIFY_SMTP_USER": "u",
                               "NOTIFY_SMTP_PASSWORD": "smtp-password"})
    assert settings.upstream_key_passphrase == b"correct horse"
    assert settings.le_eab_hmac_key == "hmac-key-from-the-ca"
    assert settings.status_token == "s" * 32
    assert settings.notify_webhook_secret == b"webhook-signing-secret"
    assert settings.notify_smtp_password == "smtp-password"
    assert settings.secret_sources == {
        "UPSTREAM_KEY_PASSPHRASE": f"credential {directory}/UPSTREAM_KEY_PASSPHRASE",
        "LE_EAB_HMAC_KEY": f"credential {directory}/LE_EAB_HMAC_KEY",
        "RFC2136_TSIG_SECRET": f"credential {directory}/RFC2136_TSIG_SECRET",
        "STATUS_TOKEN": f"file {token}", "NOTIFY_WEBHOOK_SECRET": f"file {webhook}", "NOTIFY_SMTP_PASSWORD": "env"}
    assert Settings.parse(settings.env) == settings  # parsing again: the same, nothing given twice
    # what the log redacts: the values, wherever they came from
    assert {"hmac-key-from-the-ca", "s" * 32, "c2VjcmV0", "correct horse"} <= set(logs.secret_values(settings.env))


@pytest.mark.parametrize(("provider", "plain", "secrets", "check"), [
    ("rfc2136", {"RFC2136_NAMESERVER": "192.0.2.53", "RFC2136_TSIG_KEY": "jackdaw"},
     {"RFC2136_TSIG_SECRET": "c2VjcmV0LWZyb20tYS1maWxl"},
     lambda p: p.config.secret == "c2VjcmV0LWZyb20tYS1maWxl"),
    ("porkbun", {}, {"PORKBUN_API_KEY": "pk1_abc", "PORKBUN_SECRET_API_KEY": "sk1_def"},
     lambda p: (p.config.api_key, p.config.secret_api_key) == ("pk1_abc", "sk1_def")),
    ("cloudflare", {}, {"CLOUDFLARE_API_TOKEN": "cf-token-123"},
     lambda p: p.config.api_token == "cf-token-123"),
    ("namecheap", {"NAMECHEAP_API_USER": "me", "NAMECHEAP_CLIENT_IP": "192.0.2.7"},
     {"NAMECHEAP_API_KEY": "nc-key-456"}, lambda p: p.config.api_key == "nc-key-456"),
    ("route53", {}, {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "aws-secret-789",
                     "AWS_SESSION_TOKEN": "aws-session"},
     lambda p: (lambda c: (c.access_key, c.secret_key, c.token))(p._client._request_signer._credentials)
     == ("AKIAEXAMPLE", "aws-secret-789", "aws-session")),
    ("acme-dns", {"ACME_DNS_API_URL": "https://auth.example.test"},
     {"ACME_DNS_CREDENTIALS": json.dumps({"www.example.test": {
         "username": "u", "password": "acme-dns-password", "fulldomain": "f.auth.example.test", "subdomain": "f"}})},
     lambda p: p._accounts["www.example.test"].password == "acme-dns-password"),
])
@pytest.mark.parametrize("how", ["file", "credential"])
def test_each_provider_is_built_from_secrets_out_of_the_environment(
        provider: str, plain: dict[str, str], secrets: dict[str, str], check: Any, how: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)  # boto3 would find the process's own otherwise
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    env = {**BASE, "DNS_PROVIDER": provider, **plain}
    for name, value in secrets.items():
        if how == "file":
            env[f"{name}_FILE"] = str(_file(tmp_path / "secrets" / name.lower(), value + "\n"))
        else:
            _file(tmp_path / "credentials" / name, value + "\n")
            env["CREDENTIALS_DIRECTORY"] = str(tmp_path / "credentials")
    settings = Settings.parse(env)
    assert check(build_provider(provider, settings.env))
    assert set(settings.secret_sources) == set(secrets)
    shown = {e.key: e for e in effective_config(settings).provider_env}
    for name in secrets:
        assert shown[name].source is not None and shown[name].source.startswith(how)
        if name not in PATH_SECRETS:
            assert shown[name].masked and secrets[name] not in str(shown[name])


@pytest.mark.parametrize("name", SECRETS)
def test_every_secret_is_masked_and_redacted(name: str) -> None:
    assert credentials.is_secret(name)
    value = "a-secret-value-of-some-length"
    if name in PATH_SECRETS:  # a path, shown and logged: the file's content is the secret
        assert mask(name, value) == value and value not in logs.secret_values({name: value})
    else:
        assert value not in mask(name, value) and value in logs.secret_values({name: value})


def test_gunicorns_own_log_lines_redact_secrets_from_files_too(tmp_path: Path) -> None:
    """gunicorn sets up its logs from the raw environment, before the app's settings exist."""
    path = _file(tmp_path / "token", "cf-token-from-a-file\n")
    env = serverlog._with_secrets({"CLOUDFLARE_API_TOKEN_FILE": str(path)})
    assert "cf-token-from-a-file" in logs.secret_values(env)
    broken = {"CLOUDFLARE_API_TOKEN_FILE": str(tmp_path / "missing")}
    assert serverlog._with_secrets(broken) == broken  # the app's own check names the setting
