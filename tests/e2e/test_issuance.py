"""Unmodified clients get certificates through Jackdaw from Pebble, proven by DNS-01 on BIND."""

from __future__ import annotations

from pathlib import Path

from tests.clients import certbot, check_certificate, lego
from tests.e2e.conftest import Bed


def _no_leftover_txt(bed: Bed, names: list[str]) -> None:
    for name in names:
        assert bed.bind.txt(f"_acme-challenge.{name}") == []


def test_certbot_one_name(bed: Bed, tmp_path: Path) -> None:
    names = [bed.name("certbot-one")]
    issued = certbot(tmp_path, bed.relay.directory_url, names, standalone_port=bed.challenge_port)
    check_certificate(issued, names, bed.pebble.roots_pem())
    _no_leftover_txt(bed, names)


def test_certbot_three_names(bed: Bed, tmp_path: Path) -> None:
    names = [bed.name(f"certbot-three-{i}") for i in range(3)]
    issued = certbot(tmp_path, bed.relay.directory_url, names, standalone_port=bed.challenge_port)
    check_certificate(issued, names, bed.pebble.roots_pem())
    _no_leftover_txt(bed, names)


def test_lego_one_name(bed: Bed, tmp_path: Path) -> None:
    names = [bed.name("lego-one")]
    issued = lego(tmp_path, bed.relay.directory_url, names, http_port=bed.challenge_port)
    check_certificate(issued, names, bed.pebble.roots_pem())
    _no_leftover_txt(bed, names)


