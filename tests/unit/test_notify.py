"""Notification settings (NOTIFY_*), the webhook signature and the README's verification snippet."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from jackdaw import logs
from jackdaw.envparse import ConfigError
from jackdaw.notify import secrets_of
from jackdaw.notify.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, body_of, configured, sign, verify
from jackdaw.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {"RELAY_DOMAIN": "relay.example.com", "ACME_EMAIL": "ops@example.com", "DNS_PROVIDER": "rfc2136"}
HOOK = {"NOTIFY_WEBHOOK_URL": "https://hooks.example.com/t0ken", "NOTIFY_WEBHOOK_SECRET": "s3cret-value"}


def parse(**env: str) -> Settings:
    return Settings.parse({**REQUIRED, **env})


def test_no_channel_by_default() -> None:
    s = parse()
    assert configured(s) == {}
    assert (s.notify_email_from, s.notify_email_to) == ("jackdaw@relay.example.com", ("ops@example.com",))


def test_each_channel_from_its_settings(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-the-file\nignored\n")
    s = parse(**HOOK, NOTIFY_SMTP_HOST="smtp.example.com", NOTIFY_SMTP_SECURITY="ssl", NOTIFY_SMTP_USER="u",
              NOTIFY_SMTP_PASSWORD_FILE=str(tmp_path / "pw"), NOTIFY_COMMAND="/usr/bin/logger -t 'jackdaw notify'")
    assert sorted(configured(s)) == ["command", "email", "webhook"]
    assert s.notify_smtp_port == 465 and s.notify_smtp_password == "from-the-file"
    assert s.notify_command == ("/usr/bin/logger", "-t", "jackdaw notify")
    assert "t0ken" not in configured(s)["webhook"].describe()
    assert "from-the-file" not in repr(s) and "s3cret-value" not in repr(s) and "t0ken" not in repr(s)
    # a secret read from a file is redacted from the logs like one set directly
    assert {"from-the-file", "s3cret-value"} <= set(logs.secret_values({**s.env, **secrets_of(s)}))


@pytest.mark.parametrize(("env", "named"), [
    ({"NOTIFY_WEBHOOK_URL": "https://hooks.example.com/x"}, "NOTIFY_WEBHOOK_SECRET: required"),
    ({"NOTIFY_WEBHOOK_SECRET": "s3cret-value"}, "NOTIFY_WEBHOOK_URL:"),
    ({**HOOK, "NOTIFY_WEBHOOK_URL": "hooks.example.com/t0ken"}, "NOTIFY_WEBHOOK_URL: expected an https://"),
    ({**HOOK, "NOTIFY_WEBHOOK_SECRET_FILE": "/nonexistent"}, "NOTIFY_WEBHOOK_SECRET: set either"),
    ({"NOTIFY_SMTP_SECURITY": "tls"}, "NOTIFY_SMTP_SECURITY: expected one of starttls, ssl, none"),
    ({"NOTIFY_SMTP_PASSWORD": "pw-123456"}, "NOTIFY_SMTP_USER: required"),
    ({"NOTIFY_SMTP_USER": "u", "NOTIFY_SMTP_PASSWORD": "pw-123456", "NOTIFY_SMTP_SECURITY": "none"},
     "NOTIFY_SMTP_PASSWORD: not sent over an unencrypted connection"),
    ({"NOTIFY_EMAIL_TO": "ops@example.com,nobody"}, "NOTIFY_EMAIL_TO: expected an e-mail address, got 'nobody'"),
    ({"ACME_EMAIL": "not-an-address"}, "ACME_EMAIL: expected an e-mail address"),
    ({"NOTIFY_EXPIRY_DAYS": "-1"}, "NOTIFY_EXPIRY_DAYS: must be at least 0"),
    ({"NOTIFY_ATTEMPTS": "0"}, "NOTIFY_ATTEMPTS: must be at least 1"),
])
def test_bad_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(**env)
    assert str(err.value).startswith(named)
    assert "t0ken" not in str(err.value) and "s3cret" not in str(err.value)


def test_signature_covers_timestamp_and_body() -> None:
    body = body_of({"id": 1, "event": "test"})
    now = int(time.time())
    signature = sign(b"key", now, body)
    assert verify(b"key", str(now), signature, body)
    assert not verify(b"other key", str(now), signature, body)
    assert not verify(b"key", str(now), signature, body + b" ")
    assert not verify(b"key", str(now + 1), signature, body), "the timestamp is signed"
    old = now - 301
    assert not verify(b"key", str(old), sign(b"key", old, body), body), "a replay is refused"
    assert not verify(b"key", "soon", signature, body)


def test_the_readme_snippet_verifies_what_the_relay_signs() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Notifications"):]
    [snippet] = re.findall(r"```python\n(.*?)```", section[:section.index("\n### ", 5)], re.S)
    code = "\n".join(line.removeprefix("  ") for line in snippet.splitlines())
    scope: dict[str, object] = {}
    exec(code, scope)  # the documentation's own example
    readme_verify = scope["verify"]
    assert callable(readme_verify)
    body = body_of({"id": 2, "event": "certificate_expiring"})
    now = int(time.time())
    headers = {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: sign(b"secret", now, body)}
    assert readme_verify(b"secret", headers, body) is True
    assert readme_verify(b"secret", headers, body.replace(b"2", b"3")) is False
    stale = {TIMESTAMP_HEADER: str(now - 600), SIGNATURE_HEADER: sign(b"secret", now - 600, body)}
    assert readme_verify(b"secret", stale, body) is False
