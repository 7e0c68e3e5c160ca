"""Ten certbot processes at once, one shared webroot: every order completes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.clients import Issued, Webroot, certbot, check_certificate
from tests.e2e.conftest import Bed

ORDERS = 10


def test_ten_orders_at_once(bed: Bed, tmp_path: Path) -> None:
    names = [bed.name(f"parallel-{i}") for i in range(ORDERS)]
    with Webroot(tmp_path / "www", bed.challenge_port) as www, ThreadPoolExecutor(ORDERS) as pool:
        def run(i: int) -> Issued:
            return certbot(tmp_path / f"certbot-{i}", bed.relay.directory_url, [names[i]], webroot=www.root,
                           timeout=240)

        issued = list(pool.map(run, range(ORDERS)))
    root = bed.pebble.roots_pem()
    for name, cert in zip(names, issued, strict=True):
        check_certificate(cert, [name], root)
        assert bed.bind.txt(f"_acme-challenge.{name}") == []
