"""The upstream CA as it is in 2026, against a current Pebble build (profiles, ARI, upstream EAB,
dns-persist-01), on SQLite and PostgreSQL. Debian's Pebble 2.4 has none of these: the tests run
wherever ../shared/tools/pebble/pebble exists (CI has it) and are skipped, saying so, elsewhere.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.tsigkeyring
import dns.update
import pytest
import requests
from acme import errors as acme_errors
from acme import messages
from cryptography import x509
from sqlalchemy import select, update

from jackdaw.db import make_engine, make_sessionmaker
from jackdaw.models import Certificate, Order
from jackdaw.upstream.account import PatientNetwork
from jackdaw.upstream.renewal import cert_id
from jackdaw.upstream.sequence import NewOrder
from tests.clients import Webroot, acme_account, certbot, check_certificate, http01, new_csr
from tests.relay import Relay, postgres_database, relay_env
from tests.testbed import CURRENT_PEBBLE, Bind, Pebble, free_port

pytestmark = pytest.mark.skipif(not os.access(CURRENT_PEBBLE, os.X_OK),
                                reason=f"needs a current Pebble at {CURRENT_PEBBLE} (CI has one)")

ZONE = "example.test"
PROFILES = {"default": {"description": "90 days", "validityPeriod": 7776000},
            "shortlived": {"description": "6 days", "validityPeriod": 518400}}


@pytest.fixture(scope="module")
def current_pebble(tmp_path_factory: pytest.TempPathFactory, bind: Bind) -> Iterator[Pebble]:
    with Pebble(tmp_path_factory.mktemp("pebble-current"), bind.port, nonce_reject=5, binary=CURRENT_PEBBLE,
                profiles=PROFILES) as server:
        yield server


@dataclass
class Bed:
    relay: Relay
    pebble: Pebble
    bind: Bind
    port: int
    backend: str
    database_url: str

    def name(self, label: str) -> str:
        return f"{label}-{self.backend}-y26.{ZONE}"  # directly under the zone: its wildcard A answers

    def jackdaw(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.relay.cli(*argv)


def start(stack: ExitStack, workdir: Path, bind: Bind, pebble: Pebble, backend: str, never_ready_if: str | None = None,
          **extra: str) -> Bed:
    port = free_port()
    url = f"sqlite:///{workdir / 'data' / 'jackdaw.db'}"
    settings = {"ALLOWED_DOMAINS": ZONE, **extra}
    if backend == "postgres":
        url = settings["DATABASE_URL"] = stack.enter_context(postgres_database())
    relay = stack.enter_context(Relay(workdir, relay_env(workdir, bind, pebble, port, **settings),
                                      never_ready_if=never_ready_if))
    return Bed(relay, pebble, bind, port, backend, url)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def bed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, bind: Bind,
        current_pebble: Pebble) -> Iterator[Bed]:
    with ExitStack() as stack:
        yield start(stack, tmp_path_factory.mktemp(f"relay-2026-{request.param}"), bind, current_pebble,
                    request.param, UPSTREAM_PROFILE="default")


def lifetime(chain_pem: bytes) -> timedelta:
    leaf = x509.load_pem_x509_certificates(chain_pem)[0]
    return leaf.not_valid_after_utc - leaf.not_valid_before_utc


# --- profiles -----------------------------------------------------------------------------


def test_profiles_are_mirrored_checked_and_sent_upstream(bed: Bed, tmp_path: Path) -> None:
    # the upstream directory is read by a periodic task within seconds of the start
    directory = wait_for(lambda: (d := requests.get(bed.relay.directory_url, timeout=5).json())["meta"].get(
        "profiles") and d)
    assert directory["meta"]["profiles"] == {"default": "90 days", "shortlived": "6 days"}

    short = certbot(tmp_path / "short", bed.relay.directory_url, [bed.name("short")], standalone_port=bed.port,
                    extra=["--required-profile", "shortlived"])
    check_certificate(short, [bed.name("short")], bed.pebble.roots_pem())
    assert lifetime(short.chain_pem) <= timedelta(days=7)

    with pytest.raises(AssertionError, match="nonsense"):
        certbot(tmp_path / "nonsense", bed.relay.directory_url, [bed.name("nonsense")], standalone_port=bed.port,
                extra=["--required-profile", "nonsense"])
    fallback = certbot(tmp_path / "preferred", bed.relay.directory_url, [bed.name("preferred")],
                       standalone_port=bed.port, extra=["--preferred-profile", "nonsense"])
    assert lifetime(fallback.chain_pem) > timedelta(days=30)  # UPSTREAM_PROFILE=default: 90 days

    client = acme_account(bed.relay.directory_url)  # the relay's own answer, not certbot's guess
    with pytest.raises(messages.Error) as refused:
        client.net.post(client.directory["newOrder"], NewOrder(identifiers=[
            messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=bed.name("raw"))], profile="nonsense"))
    assert refused.value.typ == "urn:ietf:params:acme:error:invalidProfile"


# --- ARI ----------------------------------------------------------------------------------


def issue(bed: Bed, webroot: Webroot, client: object, name: str, replaces: str | None = None) -> str:
    """A whole issuance through the `acme` library, optionally an ARI replacement; the chain."""
    from acme import client as acme_client

    assert isinstance(client, acme_client.ClientV2)
    _, csr_pem = new_csr([name])
    request = NewOrder(identifiers=[messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=name)],
                       **({"replaces": replaces} if replaces else {}))
    resp = client.net.post(client.directory["newOrder"], request)
    body = messages.Order.from_json(resp.json())
    authzs = [client._authzr_from_response(client._post_as_get(url), uri=url) for url in body.authorizations]
    order = messages.OrderResource(body=body, uri=resp.headers["Location"], authorizations=authzs, csr_pem=csr_pem)
    challb = http01(order.authorizations[0])
    target = webroot.root / ".well-known" / "acme-challenge" / challb.chall.encode("token")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(challb.chall.key_authorization(client.net.key))
    client.answer_challenge(challb, challb.response(client.net.key))
    done = client.poll_and_finalize(order, deadline=datetime.now() + timedelta(seconds=60))
    return str(done.fullchain_pem)


def wait_for(predicate, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_renewal_info_relays_the_upstream_window_and_replaces_goes_upstream(bed: Bed, tmp_path: Path) -> None:
    client = acme_account(bed.relay.directory_url, network=PatientNetwork)
    with Webroot(tmp_path / "www", bed.port) as www:
        chain = issue(bed, www, client, bed.name("ari"))
        leaf = x509.load_pem_x509_certificates(chain.encode())[0]
        ident = cert_id(leaf)
        relay_ari = f"{requests.get(bed.relay.directory_url, timeout=5).json()['renewalInfo']}/{ident}"
        pebble_dir = requests.get(bed.pebble.directory_url, verify=str(bed.pebble.ca_pem), timeout=5).json()
        upstream = requests.get(f"{pebble_dir['renewalInfo']}/{ident}", verify=str(bed.pebble.ca_pem), timeout=5)
        assert upstream.status_code == 200
        got = wait_for(lambda: (r := requests.get(relay_ari, timeout=5)).json() == upstream.json() and r)
        assert got, "the relay never answered the upstream's window"
        assert int(got.headers["Retry-After"]) > 60

        # the CA now wants it renewed at once (six hours later, as the cache sees it)
        past = {"suggestedWindow": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
                "explanationURL": "https://example.test/why"}
        bed.pebble.set_renewal_info(chain, past)
        engine = make_engine(bed.database_url)
        with make_sessionmaker(engine).begin() as s:
            s.execute(update(Certificate).where(Certificate.ari_id == ident).values(
                ari_refresh=datetime.now(UTC) - timedelta(seconds=1)))
        assert wait_for(lambda: requests.get(relay_ari, timeout=5).json() == past), "window not refreshed"

        # replaces: checked here, sent upstream as replaces of the same certificate
        renewed = issue(bed, www, client, bed.name("ari"), replaces=ident)
        assert renewed != chain
        with make_sessionmaker(engine)() as s:
            replaced = s.scalars(select(Certificate).where(Certificate.ari_id == ident)).one()
            replacing = s.get(Order, replaced.replaced_by)
            assert replacing is not None and replacing.replaces == ident and replacing.status == "valid"
        with pytest.raises(messages.Error) as again:
            issue(bed, www, client, bed.name("ari"), replaces=ident)
        assert again.value.typ == "urn:ietf:params:acme:error:alreadyReplaced"
        # the relay forgets its own record of the replacement: the CA still refuses it, and the
        # refusal reaches the client
        with make_sessionmaker(engine).begin() as s:
            s.execute(update(Certificate).where(Certificate.ari_id == ident).values(replaced_by=None))
        with pytest.raises(acme_errors.IssuanceError) as upstream_refused:
            issue(bed, www, client, bed.name("ari"), replaces=ident)
        assert upstream_refused.value.error.typ == "urn:ietf:params:acme:error:alreadyReplaced"
        assert "already has a replacement" in str(upstream_refused.value.error.detail)
        engine.dispose()


def test_certbot_renews_when_the_window_says_so(bed: Bed, tmp_path: Path) -> None:
    """certbot's `renew` asks renewalInfo (acme's renewal_time) through the relay."""
    name = bed.name("renew")
    issued = certbot(tmp_path, bed.relay.directory_url, [name], standalone_port=bed.port)
    relay_dir = requests.get(bed.relay.directory_url, timeout=5).json()
    leaf = x509.load_pem_x509_certificates(issued.chain_pem)[0]
    ident = cert_id(leaf)
    wait_for(lambda: requests.get(f"{relay_dir['renewalInfo']}/{ident}", timeout=5).status_code == 200)

    def renew() -> str:
        argv = [str(Path(sys.executable).parent / "certbot"), "renew", "--non-interactive",
                "--no-random-sleep-on-renew", "--config-dir", str(tmp_path / "config"),
                "--work-dir", str(tmp_path / "work"), "--logs-dir", str(tmp_path / "logs")]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REQUESTS_CA", "SSL_CERT", "CURL_CA"))}
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout + proc.stderr

    assert "not due for renewal" in renew()
    bed.pebble.set_renewal_info(issued.chain_pem.decode(), {
        "suggestedWindow": {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}})
    engine = make_engine(bed.database_url)
    with make_sessionmaker(engine).begin() as s:
        s.execute(update(Certificate).where(Certificate.ari_id == ident).values(
            ari_refresh=datetime.now(UTC) - timedelta(seconds=1)))
    engine.dispose()
    wait_for(lambda: requests.get(f"{relay_dir['renewalInfo']}/{ident}", timeout=5).json()["suggestedWindow"]
             ["start"].startswith("2026-01-01"))
    conf = tmp_path / "config" / "renewal" / f"{name}.conf"  # certbot's own ARI cache: six hours later too
    conf.write_text("".join(line for line in conf.read_text().splitlines(keepends=True)
                            if not line.startswith("ari_retry_after")))
    out = renew()
    assert "Congratulations, all renewals succeeded" in out, out
    renewed = (tmp_path / "config" / "live" / name / "cert.pem").read_bytes()
    assert x509.load_pem_x509_certificate(renewed).serial_number != leaf.serial_number


# --- upstream EAB -------------------------------------------------------------------------


def test_upstream_eab(tmp_path_factory: pytest.TempPathFactory, bind: Bind, tmp_path: Path) -> None:
    hmac_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    with ExitStack() as stack:
        pebble = stack.enter_context(Pebble(tmp_path_factory.mktemp("pebble-eab"), bind.port, binary=CURRENT_PEBBLE,
                                            eab_keys={"kid-1": hmac_key}))
        with pytest.raises(RuntimeError, match=r"LE_EAB_KID: the upstream CA .* requires an external account binding"):
            start(ExitStack(), tmp_path / "without", bind, pebble, "sqlite", never_ready_if="LE_EAB_KID")
        bed = start(stack, tmp_path / "with", bind, pebble, "sqlite", LE_EAB_KID="kid-1", LE_EAB_HMAC_KEY=hmac_key)
        issued = certbot(tmp_path / "certbot", bed.relay.directory_url, [bed.name("eab")], standalone_port=bed.port)
        check_certificate(issued, [bed.name("eab")], pebble.roots_pem())


# --- dns-persist-01 -----------------------------------------------------------------------


def publish(bind: Bind, fqdn: str, value: str, host: str) -> None:
    """What an operator does once: add the record with an update key of their own (and the
    host's own A record: the record's node would otherwise hide the zone's wildcard A)."""
    update_msg = dns.update.UpdateMessage(ZONE, keyring=dns.tsigkeyring.from_text(
        {bind.admin_key_name: bind.admin_key_secret}), keyname=bind.admin_key_name, keyalgorithm="hmac-sha256")
    update_msg.add(dns.name.from_text(fqdn), 60,
                   dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [value.encode()]))
    update_msg.add(dns.name.from_text(host), 60, "A", "127.0.0.1")
    assert dns.query.tcp(update_msg, "127.0.0.1", port=bind.port, timeout=5).rcode() == 0


def updates(bind: Bind) -> int:
    return bind.log_path.read_text().count(f"updating zone '{ZONE}/IN'")


def test_dns_persist_01_needs_no_dns_write(tmp_path: Path, bind: Bind, current_pebble: Pebble) -> None:
    with ExitStack() as stack:
        env = {"UPSTREAM_CHALLENGE": "dns-persist-01", "DNS_PROVIDER": "none", "RFC2136_TSIG_SECRET": ""}
        bed = start(stack, tmp_path / "persist", bind, current_pebble, "sqlite", **env)
        name = bed.name("persist")
        shown = bed.jackdaw("dns-persist", "show", name)
        assert shown.returncode == 0, shown.stderr
        line = shown.stdout.strip().splitlines()[-1].strip()
        fqdn, _, _, _, quoted = line.split(" ", 4)
        assert fqdn == f"_validation-persist.{name}." and "accounturi=" in quoted
        assert bed.jackdaw("dns-persist", "check", name).returncode == 1  # not published yet
        publish(bind, fqdn, json.loads(quoted), name)
        checked = bed.jackdaw("dns-persist", "check", name)
        assert checked.returncode == 0 and "OK" in checked.stdout, checked.stdout + checked.stderr
        before = updates(bind)
        issued = certbot(tmp_path / "certbot", bed.relay.directory_url, [name], standalone_port=bed.port)
        check_certificate(issued, [name], current_pebble.roots_pem())
        assert updates(bind) == before, "the relay wrote to the zone"
        assert "proven by its dns-persist-01 record" in bed.relay.log_path.read_text()


def test_auto_falls_back_to_dns_01_without_a_record(tmp_path: Path, bind: Bind, current_pebble: Pebble) -> None:
    with ExitStack() as stack:
        bed = start(stack, tmp_path / "auto", bind, current_pebble, "sqlite", UPSTREAM_CHALLENGE="auto")
        name = bed.name("auto")
        before = updates(bind)
        issued = certbot(tmp_path / "certbot", bed.relay.directory_url, [name], standalone_port=bed.port)
        check_certificate(issued, [name], current_pebble.roots_pem())
        assert updates(bind) >= before + 2  # the dns-01 value written and removed
        assert bind.txt(f"_acme-challenge.{name}") == []
