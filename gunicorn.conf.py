"""gunicorn settings for Jackdaw; every value can be overridden by the environment."""

import gc
import os
import re
from pathlib import Path

if __name__ == "__config__":  # loaded by gunicorn (not by a test reading the defaults)
    from jackdaw.startup import exit_on_bad_settings, exit_on_unusable_database

    exit_on_bad_settings()  # a bad setting: one line, exit 78, before anything binds or forks
    exit_on_unusable_database()  # so is a database it cannot open or whose schema is behind

bind = os.environ.get("JACKDAW_BIND", "127.0.0.1:8000")
worker_class = "gthread"
# One worker x 4 threads by default: requests are short and CPU-bound under the GIL, so one
# worker is one core (bench/polling.py on 2 cores: ~390 polls/s, ~280-330 newOrders/s).
# For more, 2 workers x 2 threads (~635-655 polls/s, ~350-390 newOrders/s, 126-140 MB for the
# tree: they preload and share the code; set PROMETHEUS_MULTIPROC_DIR then): fewer threads per worker
# switch less. Request threads never wait on DNS or the upstream CA (job threads do), so a few
# threads serve many clients; a free thread lets a poll wait for a result (RESPONSE_WAIT).
workers = int(os.environ.get("JACKDAW_WORKERS", "1"))
threads = int(os.environ.get("JACKDAW_THREADS", "4"))
timeout = 60
graceful_timeout = 20
keepalive = 5
# Several workers fork from a master that has imported the app, so the ~80 MB of imported code
# are shared pages instead of one copy per worker (gc.freeze keeps the collector from touching,
# hence copying, them). Nothing runs in the master: job threads start in each worker, and each
# worker opens its own database connections. One worker has nothing to share: no preload, so a
# code change takes effect on `systemctl reload`.
preload_app = workers > 1
control_socket_disable = True
accesslog = os.environ.get("JACKDAW_ACCESS_LOG") or None
errorlog = "-"
# gunicorn's error and access lines in Jackdaw's LOG_FORMAT (text or one JSON object per line)
logger_class = "jackdaw.serverlog.Logger"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# behind nginx: trust X-Forwarded-* only from the local proxy
forwarded_allow_ips = os.environ.get("JACKDAW_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def pre_fork(server, worker):  # type: ignore[no-untyped-def]
    gc.freeze()


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    runtime = worker.wsgi.extensions["jackdaw"]
    runtime.engine.dispose(close=False)  # a connection is never shared with the master or a sibling
    runtime.start()


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    app = getattr(worker, "wsgi", None)
    if app is not None:
        app.extensions["jackdaw"].stop()


# prometheus-client's multiprocess mode (several workers): PROMETHEUS_MULTIPROC_DIR names an
# empty directory of its own where each worker keeps its counters (jackdaw/metrics.py).
_PROMETHEUS_FILE = re.compile(r"(counter|histogram|summary|gauge_[a-z]+)_\d+\.db")


def on_starting(server):  # type: ignore[no-untyped-def]
    """Counts left by an earlier run would be summed into this one's: remove only those files."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        for path in Path(directory).iterdir():
            if _PROMETHEUS_FILE.fullmatch(path.name):
                path.unlink(missing_ok=True)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
