"""Headless Chromium for the pages the relay serves: Debian's `chromium` driven by Selenium
through Debian's `chromium-driver`.

Why Selenium with chromium-driver (and not Playwright): Debian builds chromedriver from the same
source as chromium, so driver and browser match through every security update of the browser;
Playwright drives a browser build it pins itself and only promises to work with that one. The
driver is given by path, so Selenium Manager never looks for (or downloads) one, and a proxy
that does not exist (loopback always bypasses it) keeps the browser off every other address.

Not a test module: tests/e2e/test_status_page.py uses it.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: where a test also leaves its screenshots when set (CI keeps that directory)
ARTIFACTS_ENV = "JACKDAW_ARTIFACTS"

ARGS = (
    "--headless=new",
    "--no-sandbox",  # the test bed runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--proxy-server=http://127.0.0.1:9",
)


@contextmanager
def chromium(workdir: Path, width: int = 1280, height: int = 900) -> Iterator[WebDriver]:
    for tool in (CHROMIUM, CHROMEDRIVER):
        assert os.access(tool, os.X_OK), f"{tool} is missing: apt-get install chromium chromium-driver (make deps)"
    workdir.mkdir(parents=True, exist_ok=True)
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (*ARGS, f"--window-size={width},{height}", f"--user-data-dir={workdir / 'profile'}"):
        options.add_argument(arg)
    service = Service(executable_path=CHROMEDRIVER, log_output=str(workdir / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def send_headers(driver: WebDriver, headers: dict[str, str]) -> None:
    """Send these headers with every request from now on ({} stops)."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": headers})


def full_page_screenshot(driver: WebDriver, path: Path) -> Path:
    """The whole page (not only the window) as PNG; also copied to $JACKDAW_ARTIFACTS if set."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    artifacts = os.environ.get(ARTIFACTS_ENV)
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / path.name)
    return path
