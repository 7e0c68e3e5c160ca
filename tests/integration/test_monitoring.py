"""deploy/monitoring: the alert rules pass promtool (syntax and unit tests of the rules), and
every metric the rules and the Grafana dashboard name is one a real relay exports."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from jackdaw.models import Account
from jackdaw.relaycert.files import CertStore
from tests.integration.conftest import running_app
from tests.integration.test_observability import _certificate, _relay_chain, runtime_of, scrape

ROOT = Path(__file__).resolve().parent.parent.parent
MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "jackdaw-rules.yml"
DASHBOARD = MONITORING / "jackdaw-dashboard.json"
METRIC = re.compile(r"\bjackdaw_[a-z0-9_]+")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: `make deps` installs Debian's prometheus package")
    return path


def test_rules_pass_promtool_check() -> None:
    proc = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_rules_fire_as_their_unit_tests_say() -> None:
    proc = subprocess.run([promtool(), "test", "rules", "jackdaw-rules.test.yml"], cwd=MONITORING,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def exported_names(database_url: str, tmp_path: Path) -> set[str]:
    """Sample names of a real app's /metrics with a client and a relay certificate in place."""
    tls = tmp_path / "tls"
    with running_app(database_url, tmp_path / "data", RELAY_CERT_ENABLED="true", RELAY_CERT_DIR=str(tls)) as app:
        rt = runtime_of(app)
        chain, key = _relay_chain(rt.settings.relay_domain, 60)
        CertStore(tls, rt.settings.relay_domain).install(key, chain)
        with rt.sessions.begin() as s:
            account = Account(thumbprint=secrets.token_hex(16), jwk={}, status="valid")
            s.add(account)
            s.flush()
            _certificate(s, account, ["www.example.test"], 30)
        return {name for name, _ in scrape(app)}


def dashboard_exprs() -> list[tuple[str, str]]:
    doc = json.loads(DASHBOARD.read_text())
    assert doc["title"] and doc["uid"] and doc["panels"]
    found = []
    for panel in doc["panels"]:
        assert panel["title"] and panel["gridPos"] and panel["targets"], panel.get("title")
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"]["type"] == "prometheus", panel["title"]
            found.append((panel["title"], target["expr"]))
    return found


def rule_exprs() -> list[tuple[str, str]]:
    doc: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return [(rule["alert"], rule["expr"]) for group in doc["groups"] for rule in group["rules"]]


def test_dashboard_and_rules_name_only_exported_metrics(database_url: str, tmp_path: Path) -> None:
    exported = exported_names(database_url, tmp_path)
    assert {"jackdaw_certificate_expiration_timestamp_seconds", "jackdaw_build_info"} <= exported
    unknown = [(where, name) for where, expr in [*dashboard_exprs(), *rule_exprs()]
               for name in METRIC.findall(expr) if name not in exported]
    assert unknown == []
    # and every panel and rule reads at least one of Jackdaw's metrics
    assert all(METRIC.search(expr) for _, expr in [*dashboard_exprs(), *rule_exprs()])
