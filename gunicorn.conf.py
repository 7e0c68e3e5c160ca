"""gunicorn settings for Jackdaw; every value can be overridden by the environment."""

import gc
import os

from jackdaw.serving import Serving, prepare_multiproc_dir

if __name__ == "__config__":  # loaded by gunicorn (not by a test reading the defaults)
    from jackdaw.startup import exit_on_bad_settings, exit_on_unusable_database, warn_unknown_settings

    exit_on_bad_settings()  # a bad setting (JACKDAW_WORKERS=two too): one line, exit 78, before anything binds
    warn_unknown_settings()  # ALLOWED_DOMIANS=...: one line each
    exit_on_unusable_database()  # a database it cannot open or whose schema is behind: one line, exit 78

# JACKDAW_BIND, JACKDAW_WORKERS, JACKDAW_THREADS, JACKDAW_ACCESS_LOG, PROMETHEUS_MULTIPROC_DIR:
# parsed by jackdaw.serving, which `jackdaw check` uses too
_serving = Serving.parse(os.environ)
bind = _serving.bind
worker_class = "gthread"
# One worker x 4 threads by default: requests are short and CPU-bound under the GIL, so one
# worker is one core (bench/polling.py on 2 cores: ~390 polls/s, ~280-330 newOrders/s).
# For more, 2 workers x 2 threads (~635-655 polls/s, ~350-390 newOrders/s, 126-140 MB for the
# tree: they preload and share the code; set PROMETHEUS_MULTIPROC_DIR then): fewer threads per worker
# switch less. Request threads never wait on DNS or the upstream CA (job threads do), so a few
# threads serve many clients; a free thread lets a poll wait for a result (RESPONSE_WAIT).
workers = _serving.workers
threads = _serving.threads
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
accesslog = _serving.access_log
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
# empty directory of its own where each worker keeps its counters (jackdaw/metrics.py). It must
# exist before the app is preloaded, which comes before gunicorn's on_starting hook: made here.
if __name__ == "__config__":
    prepare_multiproc_dir(_serving.multiproc_dir)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
