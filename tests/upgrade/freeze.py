"""Freeze the data set of a schema revision: what that release wrote, kept for every later upgrade.

    python -m tests.upgrade.freeze            # every revision in migrations/versions without one
    python -m tests.upgrade.freeze 0014       # that revision (refused if it already has one)

For a revision that is the working tree's head the working tree's own code writes the data
(the release procedure: freeze, then commit). For an older one, the last commit on this
branch's first-parent history where it was head (or, when a merge brought it in with a later
one, on the merged parent's) is checked out in a temporary git worktree and that commit's
jackdaw package and migrations write it (tests/upgrade/seed.py, in a subprocess
with PYTHONPATH at that worktree). Each data set is written once and never again:
tests/upgrade/data/<revision>/

    jackdaw.sqlite        the SQLite database (page size 1 KiB to keep it small)
    postgres.sql          pg_dump --no-owner --no-privileges of the same rows on PostgreSQL
    client-account.json   the renewing client's id, key and certificate; every account's key
    manifest.json         revision, commit, rows per table, spot values, sha256 of the files
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import josepy as jose
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jackdaw.protocol.jws import thumbprint
from jackdaw.upstream.renewal import cert_id
from tests.relay import postgres_database

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
SEED = Path(__file__).resolve().parent / "seed.py"
VERSIONS = "migrations/versions"
FILES = ("jackdaw.sqlite", "postgres.sql", "client-account.json")
#: the names of the frozen client's certificates (BIND's example.test answers them in the tests)
NAMES = ["upgrade.example.test", "www.upgrade.example.test"]


def git(*argv: str) -> str:
    return subprocess.run(["git", *argv], cwd=ROOT, check=True, capture_output=True, text=True).stdout


def _head(sources: dict[str, str]) -> str:
    """The revision no other revision names as its down_revision."""
    pattern = r"^{}(?:: [^=]+)? = ['\"]([^'\"]+)['\"]"
    revs = {re.search(pattern.format("revision"), s, re.M).group(1): s  # type: ignore[union-attr]
            for s in sources.values()}
    downs = {m.group(1) for s in sources.values() if (m := re.search(pattern.format("down_revision"), s, re.M))}
    heads = set(revs) - downs
    if len(heads) != 1:
        raise SystemExit(f"not one head among the migrations: {sorted(heads)}")
    return heads.pop()


def tree_head() -> str:
    return _head({p.name: p.read_text() for p in (ROOT / VERSIONS).glob("*.py")})


@functools.cache
def _sources_at(commit: str) -> dict[str, str]:
    paths = [p for p in git("ls-tree", "--name-only", f"{commit}:{VERSIONS}").split() if p.endswith(".py")]
    return {p: git("show", f"{commit}:{VERSIONS}/{p}") for p in paths}


def head_at(commit: str) -> str:
    return _head(_sources_at(commit))


def _revisions_at(commit: str) -> set[str]:
    pattern = re.compile(r"^revision(?:: [^=]+)? = ['\"]([^'\"]+)['\"]", re.M)
    return {m.group(1) for s in _sources_at(commit).values() if (m := pattern.search(s))}


def release_commit(revision: str) -> str | None:
    """The last commit where ``revision`` was head, on this branch's first-parent history; None
    for the working tree's head."""
    if revision == tree_head():
        return None
    found = _last_head(revision, git("rev-parse", "HEAD").strip())
    if found is None:
        raise SystemExit(f"revision {revision} was never head on this branch's history")
    return found


def _last_head(revision: str, tip: str) -> str | None:
    """The last commit on ``tip``'s first-parent history where ``revision`` was head. A merge that
    brought it in with a later revision (a branch that had merged main after main moved on,
    fast-forwarded or not) is followed into the parent it came from, never into a side branch
    that had a revision of the same number (a migration is renumbered when merged)."""
    changes = git("rev-list", "--first-parent", "--reverse", tip, "--", VERSIONS).split()
    heads = [head_at(c) for c in changes]
    if revision in heads:
        last = len(heads) - 1 - heads[::-1].index(revision)
        if last + 1 < len(changes):
            return git("rev-parse", f"{changes[last + 1]}^1").strip()  # just before the next migration came
        return tip
    for commit in reversed(changes):
        first, *merged = git("rev-list", "--parents", "-n", "1", commit).split()[1:]
        if merged and revision in _revisions_at(commit) and revision not in _revisions_at(first):
            for parent in merged:
                if (found := _last_head(revision, parent)) is not None:
                    return found
    return None


def material(now: datetime) -> dict[str, Any]:
    """Keys and real certificates (from a throwaway CA) the seed stores, the same on both databases."""
    def account(account_id: str) -> dict[str, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        jwk = jose.JWKEC(key=key.public_key())
        return {"id": account_id, "jwk": jwk.to_json(), "thumbprint": thumbprint(jwk),
                "key_pem": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()).decode()}

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Jackdaw upgrade test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=400))
          .not_valid_after(now + timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()

    def leaf(names: list[str], born: datetime, days: int) -> dict[str, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca_name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(born).not_valid_after(born + timedelta(days=days))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=True)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        return {"serial": format(cert.serial_number, "x"), "ari_id": cert_id(cert),
                "not_after": cert.not_valid_after_utc.isoformat(),
                "chain_pem": cert.public_bytes(serialization.Encoding.PEM).decode() + ca_pem}

    csr_key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in NAMES]), critical=False)
           .sign(csr_key, hashes.SHA256()))
    upstream_key = ec.generate_private_key(ec.SECP256R1())
    return {
        "now": now.isoformat(), "names": NAMES,
        # the client that renews, one bound to an EAB key (and blocked), one deactivated
        "account": account("frozenclient00000000"), "other": account("teamaccount0000000000"),
        "gone": account("goneaccount00000000000"),
        "eab_hmac": jose.b64.b64encode(b"frozen-eab-hmac-key-of-32-bytes!").decode(),
        "csr_der": csr.public_bytes(serialization.Encoding.DER).hex(),
        "upstream_key_pem": upstream_key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()).decode(),
        "certs": [leaf(NAMES, now - timedelta(days=80), 90), leaf(NAMES, now - timedelta(days=1), 90),
                  leaf(["revoked.example.test"], now - timedelta(days=10), 90)],
    }


def seed(tree: Path, url: str, material_path: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(SEED), url, str(material_path)], cwd=tree,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)}, capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"seeding at {tree} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def compact(src: Path, dst: Path) -> None:
    """One file (no WAL), 1 KiB pages: a few dozen kilobytes instead of a page per table and index."""
    shutil.copyfile(src, dst)
    conn = sqlite3.connect(dst, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA page_size=1024")
        conn.execute("VACUUM")
    finally:
        conn.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def freeze(revision: str) -> Path:
    out = DATA / revision
    if out.exists():
        raise SystemExit(f"{out} exists: a frozen data set is never written again")
    commit = release_commit(revision)
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix=f"freeze-{revision}-") as tmp_name:
        tmp = Path(tmp_name)
        tree = ROOT
        if commit is not None:
            tree = tmp / "tree"
            git("worktree", "add", "--detach", str(tree), commit)
        try:
            mat = material(now)
            (tmp / "material.json").write_text(json.dumps(mat))
            sqlite_result = seed(tree, f"sqlite:///{tmp / 'jackdaw.db'}", tmp / "material.json")
            with postgres_database() as url:
                pg_result = seed(tree, url, tmp / "material.json")
                dump = subprocess.run(["pg_dump", "--no-owner", "--no-privileges", url.replace("+psycopg", "")],
                                      check=True, capture_output=True, text=True).stdout
        finally:
            if commit is not None:
                git("worktree", "remove", "--force", str(tree))
        for result in (sqlite_result, pg_result):
            if result["revision"] != revision:
                raise SystemExit(f"the code at {commit or 'the working tree'} wrote {result['revision']}, "
                                 f"not {revision}")
        if sqlite_result["counts"] != pg_result["counts"]:
            raise SystemExit(f"SQLite and PostgreSQL differ: {sqlite_result['counts']} {pg_result['counts']}")
        out.mkdir(parents=True)
        compact(tmp / "jackdaw.db", out / "jackdaw.sqlite")
    (out / "postgres.sql").write_text(dump)
    (out / "client-account.json").write_text(json.dumps({
        "account_id": mat["account"]["id"], "key_pem": mat["account"]["key_pem"], "names": NAMES,
        "certificate_serial": mat["certs"][1]["serial"],
        "account_keys": {mat[a]["id"]: mat[a]["key_pem"] for a in ("account", "other", "gone")}},
        indent=2) + "\n")
    manifest = {
        "revision": revision, "commit": commit or f"working tree at {git('rev-parse', 'HEAD').strip()}",
        "frozen": now.isoformat(), "counts": sqlite_result["counts"], "spot": sqlite_result["spot"],
        "generic": sqlite_result["generic"], "files": {name: sha256(out / name) for name in FILES},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revisions", nargs="*", help="revisions to freeze (default: every one without a data set)")
    args = parser.parse_args(argv)
    wanted = args.revisions or missing()
    for revision in wanted:
        print(f"{revision}: {freeze(revision)}", flush=True)
    if not wanted:
        print("every revision has its data set")
    return 0


def revisions() -> list[str]:
    """Every revision in migrations/versions, oldest first (file names start with it)."""
    pattern = re.compile(r"^revision(?:: [^=]+)? = ['\"]([^'\"]+)['\"]", re.M)
    found = [(p.name, pattern.search(p.read_text())) for p in sorted((ROOT / VERSIONS).glob("*.py"))]
    return [m.group(1) for _, m in found if m]


def missing() -> list[str]:
    return [r for r in revisions() if not (DATA / r / "manifest.json").exists()]


if __name__ == "__main__":
    sys.exit(main())
