"""/readyz and /metrics of a real relay under gunicorn after a real issuance (certbot, Pebble, BIND)."""

from __future__ import annotations

from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.clients import certbot, check_certificate
from tests.e2e.conftest import Bed


def _samples(bed: Bed) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    resp = requests.get(f"{bed.relay.url}/metrics", timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(resp.text) for s in f.samples}


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_after_an_issuance(bed: Bed, tmp_path: Path) -> None:
    before = _samples(bed)
    names = [bed.name("metrics")]
    issued = certbot(tmp_path, bed.relay.directory_url, names, standalone_port=bed.challenge_port)
    check_certificate(issued, names, bed.pebble.roots_pem())
    after = _samples(bed)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("jackdaw_validations_total", outcome="valid") == 1
    assert delta("jackdaw_time_to_certificate_seconds_count") == 1
    assert delta("jackdaw_dns_provider_seconds_count", provider="rfc2136", op="present") == 1
    assert delta("jackdaw_dns_provider_seconds_count", provider="rfc2136", op="cleanup") >= 1
    assert delta("jackdaw_dns_propagation_seconds_count", outcome="propagated") == 1
    assert _value(after, "jackdaw_orders", status="valid") >= 1
    assert _value(after, "jackdaw_database_up") == 1

    ready = requests.get(f"{bed.relay.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert "recorded" in ready.json()["checks"]["upstream"]["reason"]  # the account exists now
    assert requests.get(f"{bed.relay.url}/healthz", timeout=10).json() == {"status": "ok"}
