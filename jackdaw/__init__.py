"""Jackdaw: a self-hosted ACME relay (RFC 8555 server for clients, ACME client upstream)."""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.2.0"

if TYPE_CHECKING:
    from flask import Flask

    from jackdaw.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """The one place that wires everything; tests pass their own Settings."""
    from jackdaw.app import build_app

    return build_app(settings)
