"""DNS-01 upstream through a CNAME-delegated name, and a wildcard next to its base name."""

from __future__ import annotations

from pathlib import Path

from tests.clients import certbot, check_certificate
from tests.e2e.conftest import CHALLENGE_ZONE, Bed


def test_cname_delegated_name(bed: Bed, tmp_path: Path) -> None:
    names = [bed.name("cname")]
    issued = certbot(tmp_path, bed.relay.directory_url, names, standalone_port=bed.challenge_port)
    check_certificate(issued, names, bed.pebble.roots_pem())
    # the TXT went to the delegated zone and is gone again
    assert bed.bind.txt(f"cname-{bed.backend}.{CHALLENGE_ZONE}") == []
    assert bed.relay.log_tail(400).count(f"in zone {CHALLENGE_ZONE}") >= 1


def test_wildcard_and_base_name_in_one_order(bed: Bed, tmp_path: Path) -> None:
    base = bed.name("wild")
    names = [base, f"*.{base}"]
    issued = certbot(tmp_path, bed.relay.directory_url, names, standalone_port=bed.challenge_port)
    check_certificate(issued, names, bed.pebble.roots_pem())
    assert bed.bind.txt(f"_acme-challenge.{base}") == []
