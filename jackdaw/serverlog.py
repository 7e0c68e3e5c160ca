"""gunicorn's own logs (its error log and the access log) in Jackdaw's LOG_FORMAT.

gunicorn.conf.py names this ``logger_class``: gunicorn's master and workers then write their
lines through Jackdaw's formatter (jackdaw.logs), so with ``LOG_FORMAT=json`` every line on
stdout and stderr is one JSON object, with the same redaction and, for text, the same escaping
of control characters. In JSON an access line carries its request as fields (remote, method,
path, status, ...), not as one Apache-style string.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from gunicorn import glogging

from jackdaw import credentials, envfile, logs
from jackdaw.envparse import ConfigError


def environment(dotenv: str = ".env") -> dict[str, str]:
    """The environment the app's settings will be read from (jackdaw.envfile: JACKDAW_ENV_FILE,
    or `.env` under the process environment): gunicorn sets up its logs before the app starts."""
    try:
        return envfile.merged_env(dotenv)
    except ConfigError:  # an unreadable JACKDAW_ENV_FILE: the start-up check names it
        return dict(os.environ)


def _with_secrets(env: Mapping[str, str]) -> Mapping[str, str]:
    """``env`` with the secrets read from NAME_FILE and credentials too, so they are redacted."""
    try:
        return credentials.resolve(env)[0]
    except ConfigError:  # the app's own settings check names the variable
        return env


def log_format(env: Mapping[str, str]) -> str:
    try:
        return logs.parse_log_format(env)
    except ConfigError:  # the app's own settings check names the variable
        return "text"


class Logger(glogging.Logger):
    """gunicorn's Logger with Jackdaw's formatter on every handler it sets up."""

    log_format = "text"

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        env = environment()
        self.log_format = log_format(env)
        formatter = logs.make_formatter(self.log_format, logs.secret_values(_with_secrets(env)))
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(formatter)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if self.log_format != "json":
            super().access(resp, req, environ, request_time)
            return
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        method, path = environ.get("REQUEST_METHOD", "-"), environ.get("RAW_URI", environ.get("PATH_INFO", ""))
        fields: dict[str, Any] = {
            "remote": environ.get("REMOTE_ADDR", "-"),
            "method": method,
            "path": path,
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "user_agent": environ.get("HTTP_USER_AGENT"),
        }
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded:
            fields["forwarded_for"] = forwarded
        try:
            self.access_log.info("%s %s %s", method, path, status, extra={logs.FIELDS: fields})
        except Exception:
            self.error_log.exception("access log line failed")

