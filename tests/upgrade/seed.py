"""Fill one database the way an earlier Jackdaw would have: run by tests/upgrade/freeze.py as a
script, in a subprocess whose PYTHONPATH is a checkout of THAT release.

Only that release's code is imported (its migrations, its jackdaw.models): nothing from the
current tree, so the rows are what that release could write. The same recipe serves every
release: values for a column the release does not have are left out, a required column the
recipe does not know gets a plain value of its type, and a table it does not know gets one
row, so a new migration can be frozen before this file learns its tables.

    python seed.py DATABASE_URL MATERIAL_JSON  ->  prints {"revision", "counts", "spot", "generic"}
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from jackdaw import migrate, models  # the release's own
from jackdaw.db import make_engine

GENERIC: list[str] = []  # "table.column" filled without a recipe: the freeze reports them


def plain(column: sa.Column[Any], now: datetime) -> Any:
    """A value of the column's type for a required column the recipe does not know."""
    kind = type(column.type).__name__
    if "DateTime" in kind:
        return now
    python = {"Boolean": False, "Integer": 0, "Float": 0.0, "JSON": {}, "LargeBinary": b""}.get(kind)
    if python is not None:
        return python
    return "x"


def make(session: Session, cls: Any, now: datetime, **values: Any) -> Any:
    """A row of ``cls`` with the values its table has; required columns the recipe lacks are filled."""
    table: sa.Table = cls.__table__
    row = cls(**{k: v for k, v in values.items() if k in table.c})
    for column in table.c:
        if column.key in values or column.nullable or column.default is not None \
                or column.server_default is not None or (column.primary_key and column.autoincrement is not False
                                                         and isinstance(column.type, sa.Integer)):
            continue
        GENERIC.append(f"{table.name}.{column.key}")
        fk = next(iter(column.foreign_keys), None)
        # a reference points at a row that exists (SQLite checks it here as PostgreSQL does)
        value = session.scalar(sa.select(fk.column).limit(1)) if fk is not None else plain(column, now)
        setattr(row, column.key, value)
    session.add(row)
    session.flush()
    return row


def has(name: str) -> Any:
    return getattr(models, name, None)


def fill(session: Session, m: dict[str, Any]) -> dict[str, Any]:
    now = datetime.fromisoformat(m["now"])
    later, earlier = now + timedelta(days=7), now - timedelta(days=30)
    names = m["names"]
    eab = has("EabKey")
    if eab is not None:
        make(session, eab, now, kid="team-kid", name="team", hmac_key=m["eab_hmac"], allow=["*.team.example.test"],
             wildcards=True, sources=["10.0.0.0/8"], requester_in_dns=False, orders_per_hour=30, profiles=[],
             created=earlier)
        make(session, eab, now, kid="old-kid", name="old", hmac_key=m["eab_hmac"], allow=["old.example.test"],
             wildcards=False, sources=[], requester_in_dns=True, orders_per_hour=None, profiles=["shortlived"],
             created=earlier, revoked=now)
    client = make(session, models.Account, now, id=m["account"]["id"], thumbprint=m["account"]["thumbprint"],
                  jwk=m["account"]["jwk"], status="valid", contact=["mailto:ops@example.test"], created=earlier)
    bound = make(session, models.Account, now, id=m["other"]["id"], thumbprint=m["other"]["thumbprint"],
                 jwk=m["other"]["jwk"], status="valid", contact=[], created=earlier,
                 eab_kid="team-kid", blocked=now)
    make(session, models.Account, now, id=m["gone"]["id"], thumbprint=m["gone"]["thumbprint"],
         jwk=m["gone"]["jwk"], status="deactivated", contact=[], created=earlier)

    def order(oid: str, status: str, who: Any, idents: list[str], authz: str, chall: str, **extra: Any) -> Any:
        o = make(session, models.Order, now, id=oid, account_id=who.id, status=status, expires=later,
                 identifiers=idents, created=earlier, updated=now, **extra)
        for pos, name in enumerate(idents):
            a = make(session, models.Authz, now, id=f"{oid[:12]}authz{pos}", order_id=o.id, position=pos,
                     identifier=name.removeprefix("*."), wildcard=name.startswith("*."), status=authz,
                     expires=later)
            done = chall in ("valid", "invalid")
            make(session, models.Challenge, now, id=f"{oid[:12]}chall{pos}", authz_id=a.id, type="http-01",
                 token=f"token-{oid[:12]}-{pos}", status=chall, validated=now if chall == "valid" else None,
                 error={"type": "urn:ietf:params:acme:error:incorrectResponse", "detail": "not the key "
                        "authorization", "status": 403} if chall == "invalid" else None,
                 validation_records=[{"url": f"http://{name}/.well-known/acme-challenge/t", "hostname": name,
                                      "port": "80", "addressesResolved": ["127.0.0.1"],
                                      "addressUsed": "127.0.0.1"}] if done else [],
                 tries=1 if done else 0)
        return o

    csr = bytes.fromhex(m["csr_der"])
    upstream = {"upstream_order_url": "https://acme.example.test/order/1", "upstream_status": "valid"}
    order("pendingorder000000000", "pending", client, ["pending.example.test"], "pending", "pending")
    order("readyorder0000000000", "ready", client, ["ready.example.test"], "valid", "valid", requester="10.1.2.3")
    processing = order("processingorder00000", "processing", client, names, "valid", "valid", csr=csr,
                       budget="reserved", upstream_order_url="https://acme.example.test/order/2",
                       upstream_status="processing")
    order("invalidorder00000000", "invalid", bound, ["*.team.example.test"], "invalid", "invalid",
          error={"type": "urn:ietf:params:acme:error:incorrectResponse", "detail": "wrong", "status": 403},
          upstream_error={"type": "urn:ietf:params:acme:error:rateLimited", "detail": "too many"})
    first = order("firstorder0000000000", "valid", client, names, "valid", "valid", csr=csr, budget="settled",
                  **upstream)
    second = order("secondorder000000000", "valid", client, names, "valid", "valid", csr=csr, budget="settled",
                   replaces=m["certs"][0]["ari_id"], profile="default", **upstream)
    revoked = order("revokedorder00000000", "valid", client, ["revoked.example.test"], "valid", "valid", csr=csr,
                    **upstream)

    cert = models.Certificate
    c0, c1, c2 = m["certs"]
    make(session, cert, now, id="firstcert00000000000", order_id=first.id, serial=c0["serial"],
         chain_pem=c0["chain_pem"], not_after=datetime.fromisoformat(c0["not_after"]), created=earlier,
         ari_id=c0["ari_id"], replaced_by=second.id)
    make(session, cert, now, id="secondcert0000000000", order_id=second.id, serial=c1["serial"],
         chain_pem=c1["chain_pem"], not_after=datetime.fromisoformat(c1["not_after"]), created=now,
         ari_id=c1["ari_id"], ari_start=later, ari_end=later + timedelta(days=2), ari_refresh=now + timedelta(hours=6),
         ari_explanation="https://acme.example.test/why")
    make(session, cert, now, id="revokedcert000000000", order_id=revoked.id, serial=c2["serial"],
         chain_pem=c2["chain_pem"], not_after=datetime.fromisoformat(c2["not_after"]), created=earlier,
         revoked=now, revocation_reason=4, upstream_revoked=now, ari_id=c2["ari_id"])

    make(session, models.DnsRecord, now, order_id=processing.id, zone="example.test",
         fqdn=f"_acme-challenge.{names[0]}", value="dGhlLXR4dC12YWx1ZS1vZi10aGUtZnJvemVuLXNldA", state="served",
         owner_kind="order", run="run0", written=now, served=now)
    job = models.Job
    make(session, job, now, kind="order", subject_id=processing.id, run_at=later, lease_until=None, attempts=2,
         generation=3, last_error="upstream: connection refused", created=earlier)
    make(session, job, now, kind="validate", subject_id="pendingorderchall0", run_at=later, attempts=0,
         generation=0, created=now)
    make(session, models.Nonce, now, value="frozen-nonce-fresh", expires=later)
    make(session, models.Nonce, now, value="frozen-nonce-stale", expires=earlier)

    if has("UpstreamAccount") is not None:
        make(session, models.UpstreamAccount, now, directory_url="https://acme.example.test/directory",
             key_pem=m["upstream_key_pem"], key_encrypted=False, account_url="https://acme.example.test/acct/1",
             created=earlier)
    if has("UpstreamOrder") is not None:
        make(session, models.UpstreamOrder, now, owner_kind="order", owner_id=processing.id, names=names,
             url="https://acme.example.test/order/2", stage="authorize", status="pending",
             challenges=[{"authz": "https://acme.example.test/authz/1", "url": "https://acme.example.test/chall/1"}],
             stage_since=now, created=now, updated=now)
        make(session, models.UpstreamOrder, now, owner_kind="order", owner_id=second.id, names=names,
             replaces=m["certs"][0]["ari_id"], profile="default", url="https://acme.example.test/order/3",
             stage="done", status="valid", challenges=[], stage_since=now, created=now, updated=now)
    if has("BudgetBucket") is not None:
        make(session, models.BudgetBucket, now, limit="orders_per_account", key="https://acme.example.test/acct/1",
             tokens=299.5, updated=now, label=None)
        make(session, models.BudgetBucket, now, limit="certs_per_domain", key="example.test", tokens=48.0,
             updated=now, label="example.test")
    if has("UpstreamPause") is not None:
        make(session, models.UpstreamPause, now, name="paused.example.test",
             unpause_url="https://acme.example.test/unpause", since=now)
    if has("Notification") is not None:
        make(session, models.Notification, now, event="expiring", subject="secondcert0000000000", period=now.date()
             .isoformat(), channel="webhook", payload={"title": "expiring", "text": "renew it"}, created=now,
             sent=now)
        make(session, models.Notification, now, event="order_failed", subject="invalidorder00000000",
             period="once", channel="smtp", payload={"title": "failed", "text": "an order failed"}, created=now,
             error="smtp: connection refused")
    if has("IssuedSet") is not None:  # budget.set_key of the certificate's names, as 0012 fills it
        key = "sha256:" + hashlib.sha256(",".join(sorted(set(names))).encode()).hexdigest()[:40]
        make(session, models.IssuedSet, now, set_key=key, issued=now - timedelta(days=1))
    if has("UpstreamDirectory") is not None:
        make(session, models.UpstreamDirectory, now, directory_url="https://acme.example.test/directory",
             profiles={"classic": "90 days", "shortlived": "6 days"},
             withdrawn={"tlsserver": {"description": "server only", "since": now.isoformat()}},
             caa_identities=["acme.example.test"], renewal_info="https://acme.example.test/renewal-info",
             eab_required=False, fetched=now, checked=now, error=None)
    known = {t for t in (getattr(v, "__tablename__", None) for v in vars(models).values()) if t}
    recipe = {"eab_keys", "accounts", "orders", "authzs", "challenges", "certificates", "dns_records", "jobs",
              "nonces", "upstream_accounts", "upstream_orders", "budget_buckets", "upstream_pauses", "notifications",
              "issued_sets", "upstream_directories"}
    for name in sorted(known - recipe):  # a table this recipe does not know yet: one plain row
        cls = next(v for v in vars(models).values() if getattr(v, "__tablename__", None) == name)
        GENERIC.append(name)
        make(session, cls, now)
    return {"account": client.id, "orders": {o: s for o, s in session.execute(
        sa.select(models.Order.id, models.Order.status))},
        "certificates": {c["serial"]: hashlib.sha256(c["chain_pem"].encode()).hexdigest() for c in m["certs"]}}


def main(url: str, material: str) -> None:
    m = json.loads(open(material).read())
    migrate.upgrade(url)
    engine = make_engine(url)  # the release's engine: SQLite with its foreign keys on
    try:
        with Session(engine) as session, session.begin():
            spot = fill(session, m)
        with engine.connect() as conn:
            revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
            counts = {t: conn.execute(sa.select(sa.func.count()).select_from(sa.table(t))).scalar_one()
                      for t in sorted(sa.inspect(conn).get_table_names()) if t != "alembic_version"}
    finally:
        engine.dispose()
    print(json.dumps({"revision": revision, "counts": counts, "spot": spot, "generic": sorted(set(GENERIC))}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
