"""Log formatting: LOG_FORMAT=text (default) or json (one object per line), secrets redacted.

Records carry ``order_id`` / ``account_id`` / ``client`` (the requester's address) when a caller passes them with
``extra={"order_id": ...}`` or runs inside ``log_context(order_id=...)`` (a contextvar, so
every record a job's thread writes meanwhile, from any logger, carries it).

Whatever the format, the values of secret-looking settings (``*_SECRET*``, ``*_API_KEY``,
``*TOKEN*``, ``*PASSWORD*``, ..., and the password of DATABASE_URL) are replaced by ``***`` in
the output, tracebacks included: a provider error chained to an HTTP exception that quoted
its request must not put a DNS credential into the journal.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from jackdaw.credentials import PATH_SECRETS, SECRETS
from jackdaw.envparse import ConfigError

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "***"
#: setting names whose values are credentials
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSPHRASE|HMAC|PASSWD|TOKEN|PRIVATE|API_?KEY|ACCESS_KEY$|_AUTH$")
#: shorter values are not redacted (they would blank out unrelated words and numbers)
MIN_SECRET_LENGTH = 6
CONTEXT_FIELDS = ("order_id", "account_id", "client")
#: a record attribute (``extra={FIELDS: {...}}``) whose items become fields of a JSON line
FIELDS = "fields"
#: characters that would start a new line, or rewrite one, on a terminal or in the journal
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def reference() -> str:
    """A short tag that joins a message a client sees to the log line holding the full text
    (a provider's or the CA's answer can name accounts, ARNs, unpause links)."""
    return secrets.token_hex(4)


def parse_log_format(env: Mapping[str, str]) -> str:
    """LOG_FORMAT: ``text`` (default) or ``json``."""
    value = env.get("LOG_FORMAT", "").strip().lower() or "text"
    if value not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT: expected one of {', '.join(LOG_FORMATS)}, got {value!r}")
    return value


_context: dict[str, ContextVar[str | None]] = {name: ContextVar(f"jackdaw_{name}", default=None)
                                               for name in CONTEXT_FIELDS}


@contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Attach ``order_id`` / ``account_id`` / ``client`` to every record this thread logs meanwhile."""
    tokens = [(_context[name], _context[name].set(value)) for name, value in ids.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def context_ids(record: logging.LogRecord) -> dict[str, str]:
    """``order_id`` / ``account_id`` / ``client`` of a record: its ``extra=`` values, else the context's."""
    found: dict[str, str] = {}
    for name in CONTEXT_FIELDS:
        value = getattr(record, name, None) or _context[name].get()
        if value:
            found[name] = str(value)
    return found


def secret_values(env: Mapping[str, str]) -> tuple[str, ...]:
    """The values in ``env`` that must never appear in a log line, longest first."""
    found = {value.strip() for name, value in env.items()
             if (name.upper() in SECRETS and name.upper() not in PATH_SECRETS) or SECRET_NAME.search(name.upper())}
    url = env.get("DATABASE_URL", "")
    if url:
        try:
            password = urlsplit(url).password
        except ValueError:
            password = None
        if password:
            found |= {password, unquote(password)}
    return tuple(sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=lambda v: (-len(v), v)))


class _Redacting(logging.Formatter):
    def __init__(self, secrets: tuple[str, ...], fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.secrets = secrets

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


def escape_controls(text: str) -> str:
    """``\\n``, ``\\x1b``, ... for control characters: a URL path with ``%0A`` in it must not forge a
    second log line."""
    return CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class TextFormatter(_Redacting):
    """One line per record: the message's control characters are escaped (a traceback, which is
    ours, keeps its lines)."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__(secrets, TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JSONFormatter(_Redacting):
    """One JSON object per line: ts, level, logger, msg, [order_id, account_id, client], [the
    record's FIELDS], [exc, stack]."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            **context_ids(record),
        }
        extra = getattr(record, FIELDS, None)
        if isinstance(extra, dict):
            doc.update({k: v for k, v in extra.items() if k not in doc})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc"] = record.exc_text
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps({k: self.redact(v) if isinstance(v, str) else v for k, v in doc.items()},
                          ensure_ascii=False)


def make_formatter(log_format: str, secrets: tuple[str, ...] = ()) -> logging.Formatter:
    if log_format == "json":
        return JSONFormatter(secrets)
    return TextFormatter(secrets)
