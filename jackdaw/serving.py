"""gunicorn's own settings (gunicorn.conf.py reads them here), so `jackdaw check` and gunicorn's
start refuse a bad value in the same one line naming the variable, instead of a ValueError
traceback from gunicorn's config loader."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jackdaw import envparse
from jackdaw.envparse import ConfigError

BIND = "JACKDAW_BIND"
WORKERS = "JACKDAW_WORKERS"
THREADS = "JACKDAW_THREADS"
ACCESS_LOG = "JACKDAW_ACCESS_LOG"
#: prometheus-client's multiprocess mode (several workers; jackdaw/metrics.py)
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
#: every name this module reads (jackdaw.knownkeys counts them as Jackdaw's)
KEYS = (BIND, WORKERS, THREADS, ACCESS_LOG, MULTIPROC_DIR)

_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]/]+):(\d+)")
#: counts an earlier run left in the multiprocess directory (each worker's own file)
_PROMETHEUS_FILE = re.compile(r"(counter|histogram|summary|gauge_[a-z]+)_\d+\.db")


@dataclass(frozen=True)
class Serving:
    bind: str = "127.0.0.1:8000"
    workers: int = 1
    threads: int = 4
    access_log: str | None = None
    multiproc_dir: Path | None = None

    @classmethod
    def parse(cls, env: Mapping[str, str]) -> Serving:
        return cls(
            bind=_bind(env.get(BIND, "").strip() or cls.bind),
            workers=envparse.integer(env, WORKERS, cls.workers, minimum=1),
            threads=envparse.integer(env, THREADS, cls.threads, minimum=1),
            access_log=env.get(ACCESS_LOG, "").strip() or None,
            multiproc_dir=Path(env[MULTIPROC_DIR].strip()) if env.get(MULTIPROC_DIR, "").strip() else None,
        )


def _bind(raw: str) -> str:
    """host:port, [v6]:port or unix:PATH, as gunicorn takes them (one address)."""
    if raw.startswith("unix:"):
        if not raw.removeprefix("unix:").strip():
            raise ConfigError(f"{BIND}: unix: needs a socket path, e.g. unix:/run/jackdaw/jackdaw.sock")
        return raw
    match = _HOST_PORT.fullmatch(raw)
    if match is None or not 1 <= int(match.group(2)) <= 65535:
        raise ConfigError(f"{BIND}: expected host:port (e.g. 127.0.0.1:8000) or unix:PATH, got {raw!r}")
    return raw


_prepared: set[Path] = set()


def prepare_multiproc_dir(directory: Path | None) -> None:
    """Create the multiprocess directory and remove counts an earlier run left there (they would
    be summed into this run's). At gunicorn's config load, which comes before the app is
    preloaded (prometheus-client needs the directory then); once per process, since a SIGHUP
    reloads the config while the workers' live counts are in it."""
    if directory is None or directory in _prepared:
        return
    _prepared.add(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for path in directory.iterdir():
        if _PROMETHEUS_FILE.fullmatch(path.name):
            path.unlink(missing_ok=True)
