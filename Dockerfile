# Jackdaw ACME relay: gunicorn on 0.0.0.0:8000, state (SQLite db, upstream account key) in /data.
#
#   docker build -t jackdaw .
#   docker run -d --name jackdaw --env-file .env -v jackdaw-data:/data -p 127.0.0.1:8000:8000 jackdaw
#
# Put nginx (deploy/nginx-jackdaw.conf) in front for TLS. If that proxy is not on the
# container's loopback, set JACKDAW_FORWARDED_ALLOW_IPS to its address so X-Forwarded-Proto
# is trusted.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system jackdaw \
 && useradd --system --gid jackdaw --home-dir /app --no-create-home --shell /usr/sbin/nologin jackdaw

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
 && mkdir -p /data \
 && chown jackdaw:jackdaw /data

ENV DATA_DIR=/data \
    JACKDAW_BIND=0.0.0.0:8000
VOLUME /data
EXPOSE 8000
USER jackdaw

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('JACKDAW_BIND', ':8000').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/directory', timeout=4)"]

CMD ["sh", "-c", "jackdaw db upgrade && exec gunicorn -c gunicorn.conf.py wsgi:app"]
