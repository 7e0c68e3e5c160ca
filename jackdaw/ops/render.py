"""Text and JSON renderings of the ``jackdaw.ops`` dataclasses (no database, no printing)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jackdaw.durations import human
from jackdaw.ledger import whole
from jackdaw.ops.actions import CancelResult, RetryResult
from jackdaw.ops.config import ConfigEntry, EffectiveConfig
from jackdaw.ops.queries import (
    AccountView,
    BucketView,
    BudgetView,
    CertificateView,
    ChallengeView,
    EabKeyView,
    OrderDetail,
    OrderSummary,
)

if TYPE_CHECKING:  # the dataclasses only; rendering needs none of what gathering imports
    from jackdaw.ops.status import StatusReport, UpstreamView
from jackdaw.protocol.problems import ACME_ERROR_PREFIX

#: names shown per row in list tables; the rest is summarized (JSON always has them all)
NAMES_SHOWN = 3


# -- JSON --------------------------------------------------------------------------------------

def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(obj: Any) -> str:
    """A dataclass (or a list of them) as JSON; datetimes as ISO 8601 UTC ("...Z")."""
    if isinstance(obj, list):
        data: Any = [dataclasses.asdict(o) for o in obj]
    else:
        data = dataclasses.asdict(obj)
    return json.dumps(data, indent=2, default=_jsonable, ensure_ascii=False)


# -- small pieces ------------------------------------------------------------------------------

def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def when(dt: datetime | None) -> str:
    return "-" if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def tokens(bucket: BucketView) -> str:
    """What a bucket can spend now: whole tokens (a fraction is not a certificate)."""
    return f"{whole(bucket.tokens)}/{bucket.capacity}"


def names(identifiers: Sequence[str], shown: int | None = NAMES_SHOWN) -> str:
    if shown is None or len(identifiers) <= shown:
        return ", ".join(identifiers) or "-"
    return ", ".join(identifiers[:shown]) + f" (+{len(identifiers) - shown} more)"


def problem(doc: dict[str, Any] | None) -> str:
    """``type: detail`` for a stored problem document, subproblems appended."""
    if not doc:
        return "-"
    kind = str(doc.get("type", "")).removeprefix(ACME_ERROR_PREFIX) or "problem"
    text = f"{kind}: {doc.get('detail', '')}"
    ident = doc.get("identifier")
    if isinstance(ident, dict) and ident.get("value"):
        text += f" [{ident['value']}]"
    subs = [problem(s) for s in doc.get("subproblems", []) if isinstance(s, dict)]
    return text + ("; " + "; ".join(subs) if subs else "")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = []
    for cells in (list(headers), *rows):
        padded = [c.ljust(w) for c, w in zip(cells[:-1], widths[:-1], strict=True)] + [cells[-1]]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def _fields(pairs: Sequence[tuple[str, str]], indent: str = "") -> list[str]:
    width = max((len(k) for k, _ in pairs), default=0)
    return [f"{indent}{k.ljust(width)}  {v}".rstrip() for k, v in pairs]


# -- lists -------------------------------------------------------------------------------------

def accounts_text(rows: Sequence[AccountView]) -> str:
    if not rows:
        return "no accounts"
    return table(
        ["ID", "STATUS", "CONTACT", "CREATED", "ORDERS"],
        [[a.id, a.status + (", blocked" if a.blocked else ""), ", ".join(a.contact) or "-", when(a.created),
          str(a.orders)] for a in rows],
    )


def orders_text(rows: Sequence[OrderSummary]) -> str:
    if not rows:
        return "no orders"
    return table(
        ["ID", "STATUS", "CREATED", "UPDATED", "UPSTREAM", "IDENTIFIERS"],
        [[o.id, o.status, when(o.created), when(o.updated), o.upstream_status or "-", names(o.identifiers)]
         for o in rows],
    )


def days_left(cert: CertificateView) -> str:
    if cert.expired:
        return f"EXPIRED {-cert.days_left}d ago" if cert.days_left else "EXPIRED today"
    return f"{cert.days_left}d"


def certificates_text(rows: Sequence[CertificateView]) -> str:
    if not rows:
        return "no certificates"
    return table(
        ["SERIAL", "NOT AFTER", "DAYS LEFT", "REVOKED", "CURRENT", "ORDER", "NAMES"],
        [[c.serial, when(c.not_after), days_left(c), when(c.revoked) if c.revoked else "no",
          "current" if c.current else "-", c.order_id, names(c.names)] for c in rows],
    )


# -- one order ---------------------------------------------------------------------------------

def _challenge_lines(c: ChallengeView, indent: str) -> list[str]:
    lines = [f"{indent}challenge {c.type} {c.id}: {c.status}"]
    pairs = [("token", c.token), ("validated", when(c.validated)), ("error", problem(c.error))]
    lines += _fields(pairs, indent + "  ")
    for record in c.validation_records:
        lines.append(f"{indent}  validationRecord  {json.dumps(record, sort_keys=True, ensure_ascii=False)}")
    return lines


def order_text(o: OrderDetail, now: datetime) -> str:
    lines = [f"order {o.id}"]
    lines += _fields([
        ("status", o.status),
        ("account", o.account_id),
        ("identifiers", names(o.identifiers, None)),
        ("created", when(o.created)),
        ("updated", when(o.updated)),
        ("expires", when(o.expires)),
        ("error", problem(o.error)),
        ("csr", "present (finalized)" if o.csr_present else "absent (not finalized)"),
    ], "  ")
    lines.append("upstream")
    lines += _fields([
        ("order url", o.upstream_order_url or "-"),
        ("status", o.upstream_status or "-"),
        ("stage", o.upstream_stage or "-"),
        ("error", problem(o.upstream_error)),
    ], "  ")
    lines.append("certificate")
    if o.certificate is None:
        lines.append("  -")
    else:
        cert = o.certificate
        revoked = "no" if cert.revoked is None else (
            f"{when(cert.revoked)} (reason {cert.revocation_reason}; upstream: "
            f"{when(cert.upstream_revoked) if cert.upstream_revoked else 'pending'})")
        lines += _fields([("serial", cert.serial), ("not after", f"{when(cert.not_after)} ({days_left(cert)})"),
                          ("revoked", revoked)], "  ")
    lines.append("authorizations")
    if not o.authorizations:
        lines.append("  -")
    for a in o.authorizations:
        label = f"*.{a.identifier}" if a.wildcard else a.identifier
        lines.append(f"  {label}: {a.status} (authz {a.id}, expires {when(a.expires)})")
        for c in a.challenges:
            lines += _challenge_lines(c, "    ")
    lines.append("jobs")
    if not o.jobs:
        lines.append("  -")
    for j in o.jobs:
        state = "running (leased)" if j.leased(now) else ("due" if j.run_at <= now else "scheduled")
        lines.append(f"  {j.kind} {j.subject_id}: {state}")
        lines += _fields([
            ("attempts", str(j.attempts)),
            ("generation", str(j.generation)),
            ("run at", when(j.run_at)),
            ("lease until", when(j.lease_until)),
            ("last error", j.last_error or "-"),
        ], "    ")
    lines.append("dns records still recorded")
    if not o.dns_records:
        lines.append("  -")
    if o.dns_records:
        lines += ["  " + line for line in table(
            ["FQDN", "ZONE", "VALUE", "CREATED"],
            [[r.fqdn, r.zone, r.value, when(r.created)] for r in o.dns_records]).splitlines()]
    return "\n".join(lines)


# -- actions -----------------------------------------------------------------------------------

def retry_text(r: RetryResult) -> str:
    lines = [f"order {r.order_id} ({r.status}): upstream job re-queued"]
    if r.new_upstream_order:
        lines.append("  the failed upstream order was dropped; a new upstream order will be created")
    lines += _fields([
        ("job", f"{r.job.kind} #{r.job.id}"),
        ("run at", when(r.job.run_at)),
        ("generation", str(r.job.generation)),
        ("attempts", f"{r.job.attempts} (reset)"),
        ("last error", r.job.last_error or "-"),
    ], "  ")
    if r.was_running:
        lines.append(f"  a worker holds the job until {when(r.job.lease_until)}; it runs again when that run ends")
    else:
        lines.append("  the relay's job threads pick it up within a second")
    return "\n".join(lines)


def cancel_text(r: CancelResult) -> str:
    lines = [f"order {r.order_id} cancelled: {r.previous_status} -> invalid ({problem(r.error)})",
             f"  job rows deleted: {r.jobs_deleted}"]
    if r.was_running:
        lines.append("  a worker was running its upstream job; that run ends on its own and its result is discarded")
    if r.dns_records:
        lines.append(f"  {len(r.dns_records)} TXT record(s) still recorded; the relay's periodic orphan sweep "
                     f"removes them:")
        lines += [f"    {rec.fqdn} (zone {rec.zone})" for rec in r.dns_records]
    else:
        lines.append("  no TXT records recorded for it")
    return "\n".join(lines)


# -- configuration -----------------------------------------------------------------------------

def config_text(cfg: EffectiveConfig) -> str:
    def value(e: ConfigEntry) -> str:
        shown = "(unset)" if e.value is None else (e.value or "(empty)")
        return f"{shown}  (from {e.source})" if e.source else shown

    lines = ["settings"]
    lines += _fields([(e.key, value(e)) for e in cfg.settings], "  ")
    lines.append(f"DNS provider {cfg.dns_provider}")
    lines += _fields([(e.key, value(e)) for e in cfg.provider_env], "  ") or ["  (no settings)"]
    return "\n".join(lines)


# -- EAB keys and the budget -------------------------------------------------------------------

def _policy(k: EabKeyView) -> str:
    parts = [", ".join(k.allow)]
    if k.wildcards:
        parts.append("wildcards")
    if k.sources:
        parts.append("from " + ", ".join(k.sources))
    if k.requester_in_dns:
        parts.append("requester in DNS")
    if k.orders_per_hour:
        parts.append(f"{k.orders_per_hour} orders/h")
    if k.profiles:
        parts.append("profiles " + ", ".join(k.profiles))
    return "; ".join(parts)


def eab_added_text(k: EabKeyView, hmac_key: str) -> str:
    return "\n".join([
        f"EAB key {k.name}: {_policy(k)}",
        f"  key id (--eab-kid):         {k.kid}",
        f"  HMAC key (--eab-hmac-key):  {hmac_key}",
        "The HMAC key is shown only now. certbot: --eab-kid KID --eab-hmac-key KEY; lego: --eab --kid KID --hmac KEY",
    ])


def eab_text(rows: Sequence[EabKeyView]) -> str:
    if not rows:
        return "no EAB keys"
    return table(["NAME", "KEY ID", "STATUS", "ACCOUNTS", "CREATED", "POLICY"],
                 [[k.name, k.kid, "revoked " + when(k.revoked) if k.revoked else "active", str(k.accounts),
                   when(k.created), _policy(k)] for k in rows])


def budget_text(view: BudgetView) -> str:
    if not view.enabled:
        return "the upstream budget ledger is off (BUDGET_ENABLED=false)"
    lines = ["limits: " + "; ".join(view.limits)]
    if view.paused:
        lines.append("PAUSED by the upstream CA (unpause at the link, then `jackdaw budget unpause NAME`):")
        lines += [f"  {p.name}  since {when(p.since)}  {p.unpause_url or ''}".rstrip() for p in view.paused]
    if not view.buckets:
        lines.append("nothing spent yet")
    else:
        lines.append(table(["LIMIT", "FOR", "LEFT", "FULL IN"],
                           [[b.limit, b.label, tokens(b), human(b.full_in)]
                            for b in view.buckets]))
    return "\n".join(lines)


# -- the status overview -----------------------------------------------------------------------

SPARKS = " ▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[int]) -> str:
    """One character per value, scaled to the largest (zero stays blank)."""
    top = max(values, default=0)
    if top == 0:
        return "·" * len(values)
    return "".join("·" if v == 0 else SPARKS[max(1, round(v / top * (len(SPARKS) - 1)))] for v in values)


def _relay_cert_line(r: StatusReport) -> list[str]:
    c = r.relay_certificate
    if not c.enabled:
        return [f"  {c.domain}: provided by the operator (RELAY_CERT_ENABLED=false)"]
    if c.problem:
        head = f"  {c.domain}: {c.problem}"
    elif c.placeholder:
        head = f"  {c.domain}: self-signed placeholder only (no real certificate yet)"
    else:
        head = f"  {c.domain}: serial {c.serial}, until {when(c.not_after)} ({c.days_left:g} days left)"
    lines = [head]
    if c.issuer and not c.placeholder:
        lines.append(f"    issuer {c.issuer}")
    lines.append(f"    renewal: {c.renewal_due or 'not due'}")
    if c.job is not None:
        state = "running" if c.job.running else f"queued for {when(c.job.run_at)}"
        lines.append(f"    job: {state}, attempt {c.job.attempts}"
                     + (f", last error: {c.job.last_error}" if c.job.last_error else ""))
    return lines


def meta_age(u: UpstreamView) -> str:
    """How old the stored directory meta is, and how the last fetch went."""
    if u.meta_fetched is None or u.meta_age is None:
        text = "never fetched"
    else:
        text = f"fetched {when(u.meta_fetched)} ({human(u.meta_age)} ago)"
    if u.meta_error:
        text += f"; last attempt {when(u.meta_checked)} failed: {u.meta_error}"
    return text


def status_text(r: StatusReport) -> str:
    lines = [f"Jackdaw {r.version} on {r.relay_domain}, {when(r.generated)}"]
    if r.attention:
        lines.append("ATTENTION")
        lines += [f"  ! {a}" for a in r.attention]
    else:
        lines.append("all well: nothing needs attention")

    lines.append("relay certificate")
    lines += _relay_cert_line(r)

    u = r.upstream
    lines.append("upstream")
    lines += _fields([("CA", f"{u.ca} ({u.directory_url})"),
                      ("account", u.account_url or "not registered yet (registered on first use)"),
                      ("key", "-" if u.key_stored is None else
                       f"stored {when(u.key_stored)}, {'encrypted' if u.key_encrypted else 'plain PEM'}"),
                      ("directory", meta_age(u)),
                      ("profiles", ", ".join(u.profiles) or "none offered")], "  ")
    lines += [f"    {w.name}: no longer listed by the CA since {when(w.since)}, offered until {when(w.until)}"
              for w in u.withdrawn]

    b = r.budget.view
    lines.append("budget")
    if not b.enabled:
        lines.append("  off (BUDGET_ENABLED=false)")
    else:
        lines += [f"  {p.name}: PAUSED by the CA since {when(p.since)} {p.unpause_url or ''}".rstrip()
                  for p in b.paused]
        if b.buckets:
            lines += ["  " + row for row in table(
                ["LIMIT", "FOR", "LEFT", "FULL IN"],
                [[x.limit, x.label, tokens(x), human(x.full_in)] for x in b.buckets]
            ).splitlines()]
            if r.budget.buckets_total > len(b.buckets):
                lines.append(f"  (the {len(b.buckets)} emptiest of {r.budget.buckets_total} buckets being spent)")
        else:
            lines.append("  every limit full: " + "; ".join(b.limits))

    q = r.jobs
    lines.append(f"jobs: {q.depth} queued" + (f", {q.failing} retrying after a failure" if q.failing else ""))
    if q.by_kind:
        lines.append("  " + ", ".join(f"{k.kind} {k.depth}" for k in q.by_kind))
    if q.oldest is not None:
        job = q.oldest
        lines.append(f"  oldest: {job.kind} {job.subject_id} since {when(job.created)}, attempt {job.attempts}"
                     + (f", last error: {job.last_error}" if job.last_error else ""))

    f = r.failures
    lines.append(f"failures since {when(f.since)}: {f.total}"
                 + (f" (grouped: the latest {sum(g.count for g in f.groups)})" if f.truncated else ""))
    for g in f.groups:
        lines.append(f"  {g.type}: {g.count}")
        lines += [f"    {x.order_id}  {when(x.when)}  {names(x.names)}: {x.detail}" for x in g.orders]

    c = r.certificates
    lines.append(f"certificates: {c.name_sets} name set(s) with a current certificate, "
                 f"{len(c.overdue)} not renewed within their renewal window")
    for o in c.overdue:
        lines.append(f"  ! {names(o.names)}: {o.serial} expires {when(o.not_after)} ({o.days_left:g} days)")
    if c.rows:
        rows = [[("*" if x.current else "") + ("!" if x.overdue else ""), x.serial, when(x.not_after),
                 f"{x.days_left:g}", "revoked" if x.revoked else ("expired" if x.expired else
                                                                  ("current" if x.current else "superseded")),
                 x.order_id, names(x.names)] for x in c.rows]
        lines += ["  " + row for row in table(["", "SERIAL", "NOT AFTER", "DAYS", "STATE", "ORDER", "NAMES"],
                                              rows).splitlines()]
        if c.total > len(c.rows):
            lines.append(f"  (the {len(c.rows)} soonest of {c.total})")
        lines.append("  * current for its names   ! not renewed within its renewal window")
    else:
        lines.append("  none issued")

    h = r.history
    lines.append(f"last {len(h)} days ({h[0].day} .. {h[-1].day}), one character a day")
    lines.append(f"  issued {sum(d.issued for d in h):>5}  {sparkline([d.issued for d in h])}")
    lines.append(f"  failed {sum(d.failed for d in h):>5}  {sparkline([d.failed for d in h])}")
    return "\n".join(lines)
