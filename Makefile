# Jackdaw: developer and CI entry points (GNU make; as root on Debian 12, or with sudo).
#
#   make deps     Debian packages the tests and the demo use (skips apt when all are present)
#   make venv     .venv with the pinned requirements and Jackdaw itself (editable)
#   make install  production: .venv afresh from /usr/bin/python3, runtime requirements only (no test tools)
#   make lint     ruff + mypy
#   make test     deps + venv + lint + prerequisite check + the whole pytest suite (e2e included)
#   make run      migrate, then serve with gunicorn from `make install`'s venv (settings from the env / .env)
#   make demo     local BIND + Pebble + Jackdaw, real certbot gets a certificate (no public CA)
#   make bench    benchmarks in bench/ (print figures; not tests)
#   make clean    remove the venv, caches and demo output (never the relay's data/)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
# targets build on each other in a fixed order (deps before venv before lint before test)
.NOTPARALLEL:

# python3 from PATH (pyenv shims included), else Debian's; override with `make PYTHON=...`
PYTHON ?= $(or $(shell command -v python3 2>/dev/null),/usr/bin/python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQUIREMENTS := requirements.txt requirements-dev.txt setup.cfg pyproject.toml

# Debian packages: venv for the system python, the e2e test bed (Pebble, BIND; lego, acme-tiny,
# uacme, dehydrated and Caddy as clients), nginx for the reverse-proxy setup, pg_isready for the
# PostgreSQL check, headless Chromium (with its driver and a font) for the status page, prometheus for
# promtool (the alert rules' test).
DEB_PACKAGES := python3-venv pebble bind9 bind9-utils lego acme-tiny uacme dehydrated caddy nginx postgresql-client \
	ca-certificates systemd gettext-base chromium chromium-driver fonts-dejavu-core prometheus
# what the tests and the demo execute from those packages
PEBBLE := /usr/bin/pebble
NAMED := /usr/sbin/named
LEGO := /usr/bin/lego
PROMTOOL := /usr/bin/promtool
CLIENTS := $(LEGO) /usr/bin/acme-tiny /usr/bin/uacme /usr/bin/dehydrated /usr/bin/caddy
BROWSER := /usr/bin/chromium /usr/bin/chromedriver
PG_HOST := 127.0.0.1
PG_PORT := 5432
PG_URL := postgresql://postgres@$(PG_HOST):$(PG_PORT)/test

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
LINT_PATHS := jackdaw tests bench wsgi.py gunicorn.conf.py

# `make install`: the production venv the systemd unit runs (/opt/jackdaw/.venv in a clone at
# /opt/jackdaw). Debian's python3, never the first python3 on PATH (a root-only pyenv shim would
# leave the jackdaw user a venv it cannot run); needs only the python3-venv package.
INSTALL_PYTHON ?= /usr/bin/python3
INSTALL_VENV ?= $(CURDIR)/.venv
PIP_QUIET := --disable-pip-version-check -q --no-cache-dir

.PHONY: help deps venv install lint precheck precheck-tools precheck-postgres test run demo bench clean

help:
	@sed -n 's/^#   make /  make /p' $(firstword $(MAKEFILE_LIST))

deps:
	@missing=""; \
	for pkg in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; exit 0; fi; \
	echo "deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	$(SUDO) apt-get update -qq; \
	$(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	case " $$missing " in *" caddy "*) \
	  if [ -d /run/systemd/system ]; then $(SUDO) systemctl disable --now caddy.service || true; fi;; \
	esac; \
	case " $$missing " in *" prometheus "*) \
	  if [ -d /run/systemd/system ]; then $(SUDO) systemctl disable --now prometheus.service || true; fi;; \
	esac  # caddy starts a Caddy on :80 and :443, prometheus a server on :9090; tests need neither

venv: $(STAMP)

# Recreated only when a requirements/packaging file changes (or the venv is gone).
$(STAMP): $(REQUIREMENTS)
	@command -v $(PYTHON) >/dev/null || { echo "venv: no python3 found (run 'make deps' or set PYTHON=)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "venv: Jackdaw needs Python >= 3.11; $(PYTHON) is $$($(PYTHON) -V 2>&1)"; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || \
	  { echo "venv: $(PYTHON) cannot create virtual environments; run 'make deps' (python3-venv) first"; exit 1; }
	@[ -x $(BIN)/python ] && $(BIN)/python -c 'import sys' 2>/dev/null || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --disable-pip-version-check -q --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q -e .
	@touch $@

install:
	@[ -x $(INSTALL_PYTHON) ] || { echo "install: no $(INSTALL_PYTHON); apt-get install python3 python3-venv" >&2; exit 1; }
	@$(INSTALL_PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "install: Jackdaw needs Python >= 3.11; $(INSTALL_PYTHON) is $$($(INSTALL_PYTHON) -V 2>&1)" >&2; exit 1; }
	@$(INSTALL_PYTHON) -c 'import ensurepip, venv' 2>/dev/null || \
	  { echo "install: $(INSTALL_PYTHON) cannot create virtual environments: apt-get install python3-venv" >&2; exit 1; }
	rm -rf $(INSTALL_VENV)  # afresh: a venv of another python, or with `make venv`'s test tools, goes
	$(INSTALL_PYTHON) -m venv $(INSTALL_VENV)
	$(INSTALL_VENV)/bin/python -m pip install $(PIP_QUIET) -r requirements.txt
	@# editable, as in the Dockerfile: the `jackdaw` command finds migrations/ beside the package
	$(INSTALL_VENV)/bin/python -m pip install $(PIP_QUIET) --no-deps -e .
	@# whatever root's umask: the unit's User= reads the code and runs the venv, writes neither
	chmod -R a+rX $(INSTALL_VENV) jackdaw migrations wsgi.py gunicorn.conf.py *.egg-info
	chmod a+rX $(CURDIR)
	@$(INSTALL_VENV)/bin/jackdaw --version >/dev/null && echo "install: $(INSTALL_VENV) ($$(du -sh $(INSTALL_VENV) | cut -f1)), $$($(INSTALL_VENV)/bin/jackdaw --version)"

lint: venv
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy

# End-to-end prerequisites: fail loudly (the suite must never skip them).
precheck: precheck-tools precheck-postgres

precheck-tools:
	@for tool in $(PEBBLE) $(NAMED) $(PROMTOOL) $(CLIENTS) $(BROWSER); do \
	  [ -x "$$tool" ] || { echo "precheck: $$tool is missing; run 'make deps' (packages: $(DEB_PACKAGES))" >&2; exit 1; }; \
	done; echo "precheck: pebble, named, promtool, chromium and the clients (lego, acme-tiny, uacme, dehydrated, caddy) present"

precheck-postgres: venv
	@pg_up() { \
	  if command -v pg_isready >/dev/null; then pg_isready -q -h $(PG_HOST) -p $(PG_PORT) || return 1; fi; \
	  $(BIN)/python -c 'import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()' '$(PG_URL)' 2>/dev/null; \
	}; \
	if ! pg_up && [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then \
	  echo "precheck: PostgreSQL not answering on $(PG_HOST):$(PG_PORT); starting the local cluster"; \
	  for version in $$(ls /etc/postgresql); do \
	    $(SUDO) pg_ctlcluster --skip-systemctl-redirect "$$version" main start || true; \
	  done; \
	  for _ in $$(seq 1 20); do pg_up && break; sleep 0.5; done; \
	fi; \
	if pg_up; then echo "precheck: PostgreSQL answers at $(PG_URL)"; else \
	  echo "precheck: cannot connect to $(PG_URL)." >&2; \
	  echo "  The integration and e2e tests need PostgreSQL on $(PG_HOST):$(PG_PORT) with trust auth for user" >&2; \
	  echo "  'postgres' and a database 'test'. Start it (pg_ctlcluster --skip-systemctl-redirect" >&2; \
	  echo "  <version> main start) or install and configure it, then re-run." >&2; \
	  exit 1; \
	fi

test: deps venv lint precheck
	$(BIN)/pytest -q

# `make run`: the relay from the runtime venv of `make install` (made if missing), never the test
# bed (`make deps`: Pebble, BIND, Chromium...). Settings from the environment, then ./.env.
RUN_BIN := $(INSTALL_VENV)/bin
RUN_ENV = $(if $(wildcard .env),$(RUN_BIN)/dotenv -f .env run --no-override --,)

run:
	@[ -x $(RUN_BIN)/gunicorn ] || $(MAKE) --no-print-directory install
	@[ -f .env ] || echo "run: no .env here; using the process environment (see .env.example)"
	@# DATA_DIR: the checkout's ./data unless set (the CLI never guesses it), made here since
	@# `db upgrade` makes no directory (under systemd, StateDirectory= does)
	exec $(RUN_ENV) sh -c 'export DATA_DIR="$${DATA_DIR:-$(CURDIR)/data}" && mkdir -p -m 0700 -- "$$DATA_DIR" \
	  && $(RUN_BIN)/jackdaw db upgrade && exec $(RUN_BIN)/gunicorn -c gunicorn.conf.py wsgi:app'

demo: deps venv precheck-tools
	$(BIN)/python -m tests.demo $(DEMO_ARGS)

bench: deps venv precheck
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/ttc.py
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/clients.py
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/polling.py

clean:
	rm -rf $(VENV) demo-out build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
