"""Where notifications go: a webhook, e-mail over SMTP, a command. Each is optional.

Every channel sends the same document (``doc``: the event's payload plus its ``id``) and
raises ``DeliveryFailed`` with a short reason that names no secret (no URL, which may carry a
token; no password); the outbox retries through the job queue.

Webhook signature: ``Jackdaw-Signature: v1=<hex>``, the HMAC-SHA256 with
``NOTIFY_WEBHOOK_SECRET`` of ``<Jackdaw-Timestamp>.<body>`` (the timestamp header is Unix
seconds), so a receiver can refuse a replayed or altered body; ``verify`` is the receiver's
side, as documented in the README.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests

from jackdaw import __version__
from jackdaw.settings import Settings

SIGNATURE_HEADER = "Jackdaw-Signature"
TIMESTAMP_HEADER = "Jackdaw-Timestamp"
DELIVERY_HEADER = "Jackdaw-Delivery"
EVENT_HEADER = "Jackdaw-Event"
#: how far a receiver should accept a timestamp from its own clock (``verify``'s default)
REPLAY_WINDOW = 300
#: the end of a failing command's output kept in the reason
OUTPUT_TAIL = 300
#: the environment a command gets besides the JACKDAW_* variables (not the relay's: it holds credentials)
COMMAND_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "HOME")


class DeliveryFailed(Exception):
    """The channel did not take the notification; the message is safe to log."""


class Channel(Protocol):
    name: str

    def send(self, doc: dict[str, Any]) -> None: ...

    def describe(self) -> str:
        """Where it goes, for the operator (no secret)."""
        ...


def body_of(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return "v1=" + hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, timestamp: str, signature: str, body: bytes, *, now: float | None = None,
           window: int = REPLAY_WINDOW) -> bool:
    """The receiver's check: the signature is ours and the timestamp recent."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - ts) > window:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


@dataclass
class Webhook:
    url: str = field(repr=False)
    secret: bytes = field(repr=False)
    timeout: float
    name: str = "webhook"

    def describe(self) -> str:
        parts = urlsplit(self.url)
        return f"POST {parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/…"

    def send(self, doc: dict[str, Any]) -> None:
        body = body_of(doc)
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": f"jackdaw/{__version__}",
                   TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(self.secret, timestamp, body),
                   DELIVERY_HEADER: str(doc.get("id", "")), EVENT_HEADER: str(doc.get("event", ""))}
        try:
            # no redirects: the signed body goes to the configured URL or nowhere
            response = requests.post(self.url, data=body, headers=headers, timeout=self.timeout,
                                     allow_redirects=False)
        except requests.Timeout:
            raise DeliveryFailed(f"no answer within {self.timeout:g} s") from None
        except requests.RequestException as exc:  # its text quotes the URL
            raise DeliveryFailed(f"cannot connect ({type(exc).__name__})") from None
        with response:
            if not 200 <= response.status_code < 300:
                raise DeliveryFailed(f"HTTP {response.status_code}")


@dataclass
class Email:
    host: str
    port: int
    security: str  # starttls, ssl, none
    sender: str
    to: tuple[str, ...]
    timeout: float
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    name: str = "email"

    def describe(self) -> str:
        return f"SMTP {self.host}:{self.port} ({self.security}) to {', '.join(self.to)}"

    def message(self, doc: dict[str, Any]) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"[jackdaw {doc.get('relay', '')}] {doc.get('title', '')}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        msg[EVENT_HEADER] = str(doc.get("event", ""))
        details = "\n".join(f"  {key}: {value}" for key, value in sorted(doc.get("details", {}).items()))
        msg.set_content(f"{doc.get('text', '')}\n\n{details}\n\n-- \nJackdaw on {doc.get('relay', '')}, "
                        f"notification {doc.get('id', '')} ({doc.get('event', '')}, {doc.get('raised', '')})\n")
        return msg

    def send(self, doc: dict[str, Any]) -> None:
        context = ssl.create_default_context()
        try:
            smtp = (smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
                    if self.security == "ssl" else smtplib.SMTP(self.host, self.port, timeout=self.timeout))
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=context)
                if self.user is not None and self.password is not None:
                    smtp.login(self.user, self.password)
                smtp.send_message(self.message(doc))
        except smtplib.SMTPResponseException as exc:
            error = exc.smtp_error
            text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
            raise DeliveryFailed(f"SMTP {exc.smtp_code}: {text.strip()[:200]}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(f"recipients refused: {', '.join(sorted(exc.recipients))}") from None
        except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:300]) from None


@dataclass
class Command:
    argv: tuple[str, ...]
    timeout: float
    name: str = "command"

    def describe(self) -> str:
        return self.argv[0]

    def send(self, doc: dict[str, Any]) -> None:
        env = {k: os.environ[k] for k in COMMAND_ENV if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update({"JACKDAW_EVENT": str(doc.get("event", "")), "JACKDAW_SUBJECT": str(doc.get("subject", "")),
                    "JACKDAW_NOTIFICATION_ID": str(doc.get("id", "")), "JACKDAW_TITLE": str(doc.get("title", "")),
                    "JACKDAW_RELAY": str(doc.get("relay", ""))})
        try:
            proc = subprocess.run(list(self.argv), input=body_of(doc), capture_output=True, timeout=self.timeout,
                                  env=env, check=False)
        except subprocess.TimeoutExpired:
            raise DeliveryFailed(f"{self.argv[0]}: no exit within {self.timeout:g} s") from None
        except OSError as exc:
            raise DeliveryFailed(f"{self.argv[0]}: {exc.strerror or exc}") from None
        if proc.returncode != 0:
            output = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip()[-OUTPUT_TAIL:]
            raise DeliveryFailed(f"{self.argv[0]} exited with {proc.returncode}{': ' + output if output else ''}")


def configured(settings: Settings) -> dict[str, Channel]:
    """The channels the settings configure, by name."""
    found: dict[str, Channel] = {}
    if settings.notify_webhook_url and settings.notify_webhook_secret:
        found["webhook"] = Webhook(settings.notify_webhook_url, settings.notify_webhook_secret,
                                   settings.notify_timeout)
    if settings.notify_smtp_host:
        found["email"] = Email(settings.notify_smtp_host, settings.notify_smtp_port, settings.notify_smtp_security,
                               settings.notify_email_from, settings.notify_email_to, settings.notify_timeout,
                               settings.notify_smtp_user, settings.notify_smtp_password)
    if settings.notify_command:
        found["command"] = Command(settings.notify_command, settings.notify_command_timeout)
    return found
