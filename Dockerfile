# Jackdaw ACME relay: gunicorn on 0.0.0.0:8000, state (SQLite db, upstream account key) in
# /data, the relay's own certificate (fullchain.pem, privkey.pem) in /tls.
#
#   docker compose up -d        # with nginx in front: see docker-compose.yml
#
# or alone:
#
#   docker build -t jackdaw .
#   docker run -d --name jackdaw --env-file .env -v jackdaw-data:/data -v jackdaw-tls:/tls \
#       -p 127.0.0.1:8000:8000 jackdaw
#
# Put nginx (deploy/nginx-jackdaw.conf) in front for TLS, reading /tls. If that proxy is not on
# the container's loopback, set JACKDAW_FORWARDED_ALLOW_IPS to its address so X-Forwarded-Proto
# is trusted.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# a fixed numeric id: volumes keep their owner across rebuilds, and orchestrators can check
# runAsNonRoot against USER
RUN groupadd --system --gid 10001 jackdaw \
 && useradd --system --uid 10001 --gid jackdaw --home-dir /app --no-create-home --shell /usr/sbin/nologin jackdaw

WORKDIR /app

# dependencies first: this layer is rebuilt only when requirements.txt changes
COPY requirements.txt ./
RUN pip install -r requirements.txt

# README.m[d]: copied when present (setup.cfg reads it as the long description)
COPY setup.cfg pyproject.toml README.m[d] ./
COPY jackdaw/ jackdaw/
COPY migrations/ migrations/
COPY wsgi.py gunicorn.conf.py ./
# editable: the `jackdaw` command finds migrations/ next to the package, as in a checkout
RUN pip install --no-deps -e . \
 && mkdir -p /data /tls \
 && chown jackdaw:jackdaw /data /tls

ENV DATA_DIR=/data \
    RELAY_CERT_DIR=/tls \
    JACKDAW_BIND=0.0.0.0:8000
VOLUME ["/data", "/tls"]
EXPOSE 8000
USER 10001:10001

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('JACKDAW_BIND', ':8000').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

CMD ["sh", "-c", "jackdaw db upgrade && exec gunicorn -c gunicorn.conf.py wsgi:app"]
