"""`jackdaw relay-cert status|renew [--force]|placeholder`: what jackdaw/cli.py dispatches to.

Exit codes: 0 ok; 1 status found no real certificate in force (placeholder, unusable, renewal
due) or renew was refused (RELAY_CERT_ENABLED is off).
"""

from __future__ import annotations

import json
from typing import Any

from jackdaw.relaycert.files import CertStore
from jackdaw.relaycert.job import standalone
from jackdaw.settings import Settings


def run(settings: Settings, action: str, *, force: bool = False, as_json: bool = False) -> int:
    if action == "placeholder":
        return placeholder(settings)
    if action == "renew":
        return renew(settings, force)
    return status(settings, as_json)


def placeholder(settings: Settings) -> int:
    """Before nginx first starts (an init container, ExecStartPre): make sure it has files."""
    if not settings.relay_cert_enabled:
        print("RELAY_CERT_ENABLED is off: the relay does not manage its certificate; nothing written")
        return 0
    store = CertStore(settings.relay_cert_path, settings.relay_domain)
    if store.ensure_placeholder():
        print(f"self-signed placeholder for {settings.relay_domain} written to {store.directory}")
    else:
        print(f"a usable certificate is already in {store.directory}; left as it is")
    return 0


def renew(settings: Settings, force: bool) -> int:
    if not settings.relay_cert_enabled:
        print("RELAY_CERT_ENABLED is off: the relay does not manage its certificate")
        return 1
    relay = standalone(settings)
    try:
        relay.renew(force=force)
    finally:
        relay.queue.engine.dispose()
    what = "forced renewal" if force else "renewal check (renews only if due)"
    print(f"{what} of the relay certificate for {settings.relay_domain} queued; the running relay "
          "takes it up within a second or so: follow it with `jackdaw relay-cert status`")
    return 0


def status(settings: Settings, as_json: bool = False) -> int:
    relay = standalone(settings)
    try:
        current = relay.status()
        job = relay.job()
    finally:
        relay.queue.engine.dispose()
    due = current.renewal_reason(settings.relay_cert_renew_days)
    days = current.days_left()
    report: dict[str, Any] = {
        "domain": settings.relay_domain,
        "enabled": settings.relay_cert_enabled,
        "directory": str(current.directory),
        "problem": current.problem,
        "subject": current.subject or None,
        "issuer": current.issuer or None,
        "serial": current.serial or None,
        "names": list(current.names),
        "not_after": current.not_after.isoformat() if current.not_after else None,
        "days_left": round(days, 1) if days is not None else None,
        "placeholder": current.placeholder,
        "renewal_due": due,
        "force_requested": relay.store.force_token() is not None,
        "job": None if job is None else {
            "run_at": job.run_at.isoformat(), "attempts": job.attempts, "running": job.running,
            "last_error": job.last_error,
        },
    }
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 1 if due is not None else 0


def _print(r: dict[str, Any]) -> None:
    print(f"relay certificate for {r['domain']}" + ("" if r["enabled"] else " (RELAY_CERT_ENABLED is off)"))
    print(f"  directory: {r['directory']}")
    if r["problem"]:
        print(f"  problem: {r['problem']}")
    if r["serial"]:
        print(f"  subject: {r['subject']}")
        print(f"  issuer: {r['issuer']}")
        print(f"  serial: {r['serial']}")
        print(f"  names: {', '.join(r['names']) or '-'}")
        print(f"  not after: {r['not_after']} ({r['days_left']} days left)")
        print(f"  placeholder: {'yes' if r['placeholder'] else 'no'}")
    print(f"  renewal: {'due: ' + r['renewal_due'] if r['renewal_due'] else 'not due'}"
          + ("; forced renewal requested" if r["force_requested"] else ""))
    job = r["job"]
    if job is None:
        print("  job: none queued")
    else:
        state = "running" if job["running"] else f"queued for {job['run_at']}"
        print(f"  job: {state}, attempt {job['attempts']}"
              + (f", last error: {job['last_error']}" if job["last_error"] else ""))
