"""The operator's status page in headless Chromium, after real issuances through the relay.

certbot obtains a certificate and then renews it (the renewal is the current one of its name
set, the first superseded), lego obtains one for two names, and a certbot run whose HTTP-01
server is on the wrong port fails its order. Chromium (tests/browser.py) then loads /status
from gunicorn's own port as an operator on the host would, finds each certificate with the
current one marked, the failure linking to its order (followed), and the SVG plot, and saves a
screenshot (pytest's tmp dir, and $JACKDAW_ARTIFACTS when set). A request relayed by a proxy
(X-Forwarded-For) sees only a 404 unless it carries STATUS_TOKEN. nginx's own refusal of
/status is in tests/e2e/test_nginx.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from cryptography import x509
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser import chromium, full_page_screenshot, send_headers
from tests.clients import certbot, check_certificate, lego
from tests.e2e.conftest import STATUS_TOKEN, Bed
from tests.testbed import free_port


def _serial(chain_pem: bytes) -> str:
    return format(x509.load_pem_x509_certificates(chain_pem)[0].serial_number, "x")


def _row(driver: WebDriver, serial: str) -> tuple[str, str, str]:
    """(data-current, class, text) of the certificate table's row for ``serial``."""
    [row] = driver.find_elements(By.CSS_SELECTOR, f'tr.cert[data-serial="{serial}"]')
    return row.get_attribute("data-current") or "", row.get_attribute("class") or "", row.text


def test_the_status_page_in_chromium(bed: Bed, tmp_path: Path) -> None:
    renewed_name = bed.name("status-renewed")
    pair = [bed.name("status-lego"), bed.name("status-lego-www")]
    failing = bed.name("status-fails")
    first = certbot(tmp_path / "certbot", bed.relay.directory_url, [renewed_name], standalone_port=bed.challenge_port)
    again = certbot(tmp_path / "certbot", bed.relay.directory_url, [renewed_name], standalone_port=bed.challenge_port,
                    extra=["--force-renewal"])
    for issued in (first, again):
        check_certificate(issued, [renewed_name], bed.pebble.roots_pem())
    by_lego = lego(tmp_path / "lego", bed.relay.directory_url, pair, http_port=bed.challenge_port)
    check_certificate(by_lego, pair, bed.pebble.roots_pem())
    with pytest.raises(AssertionError, match="certbot failed"):  # the relay finds nothing on its port
        certbot(tmp_path / "certbot-fails", bed.relay.directory_url, [failing], standalone_port=free_port(),
                timeout=60)
    old, current, pair_serial = _serial(first.chain_pem), _serial(again.chain_pem), _serial(by_lego.chain_pem)
    assert old != current

    page = f"{bed.relay.url}/status"
    with chromium(tmp_path / "chromium") as driver:
        driver.get(page)
        assert driver.title == "Jackdaw status · relay.example.test"
        assert driver.find_elements(By.TAG_NAME, "script") == []

        is_current, classes, text = _row(driver, current)
        assert is_current == "true" and "current" in classes.split() and renewed_name in text
        assert "overdue" not in classes.split(), "just renewed"
        is_current, classes, text = _row(driver, old)
        assert is_current == "false" and "superseded" in classes.split() and renewed_name in text
        is_current, _, text = _row(driver, pair_serial)
        assert is_current == "true" and all(name in text for name in pair)

        plot = driver.find_element(By.CSS_SELECTOR, "svg#history-plot")
        assert plot.is_displayed() and plot.size["width"] > 600
        assert len(plot.find_elements(By.CSS_SELECTOR, "rect.issued")) >= 1
        assert len(plot.find_elements(By.CSS_SELECTOR, "rect.failed")) >= 1

        failures = driver.find_element(By.ID, "failures")
        assert failing in failures.text
        full_page_screenshot(driver, tmp_path / f"status-{bed.backend}.png")

        # the failure links to its order's history
        [link] = [a for a in failures.find_elements(By.TAG_NAME, "a")
                  if failing in a.find_element(By.XPATH, "ancestor::tr").text]
        link.click()
        assert "/status/order/" in driver.current_url
        order = driver.find_element(By.ID, "order").text
        assert "invalid" in order and failing in order
        assert "connection" in driver.find_element(By.ID, "authorizations").text
        full_page_screenshot(driver, tmp_path / f"status-order-{bed.backend}.png")

        # as the relay sees a request nginx passes on: forwarded, so not an insider
        send_headers(driver, {"X-Forwarded-For": "203.0.113.7"})
        driver.get(page)
        assert driver.find_element(By.TAG_NAME, "body").text == "Not Found"
        assert renewed_name not in driver.page_source
        send_headers(driver, {"X-Forwarded-For": "203.0.113.7", "Authorization": f"Bearer {STATUS_TOKEN}"})
        driver.get(page)
        assert driver.find_elements(By.CSS_SELECTOR, f'tr.cert[data-serial="{current}"]')

    relayed = requests.get(page, headers={"X-Forwarded-For": "203.0.113.7"}, timeout=10)
    assert (relayed.status_code, relayed.text) == (404, "Not Found\n")
    assert "Replay-Nonce" not in relayed.headers
    wrong = requests.get(page, headers={"X-Forwarded-For": "203.0.113.7", "Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 404

    # `jackdaw status` tells the same
    proc = bed.relay.cli("status")
    assert proc.returncode == 0, proc.stderr
    assert current in proc.stdout and old in proc.stdout and failing in proc.stdout
