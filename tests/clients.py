"""Real ACME clients driven as a user would run them, and checks on what they got."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import josepy as jose
from acme import challenges, crypto_util, messages
from acme import client as acme_client
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

BIN = Path(sys.executable).parent
LEGO = "/usr/bin/lego"


def _client_env(**extra: str) -> dict[str, str]:
    # The machine presets CA-bundle variables; clients talk plain http:// to the relay.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REQUESTS_CA", "SSL_CERT", "CURL_CA"))}
    env.update(extra)
    return env


@dataclass
class Issued:
    chain_pem: bytes
    key_pem: bytes


def certbot(workdir: Path, directory_url: str, names: list[str], *, standalone_port: int | None = None,
            webroot: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None,
            wrapper: list[str] | None = None, extra: list[str] | None = None) -> Issued:
    """``env``: extra variables (e.g. REQUESTS_CA_BUNDLE); ``wrapper``: argv run in front of certbot;
    ``extra``: more certbot options (e.g. --eab-kid/--eab-hmac-key)."""
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [*(wrapper or []), str(BIN / "certbot"), "certonly", "--non-interactive", "--agree-tos",
            "-m", "admin@example.test", "--server", directory_url, "--config-dir", str(workdir / "config"),
            "--work-dir", str(workdir / "work"), "--logs-dir", str(workdir / "logs"), "--cert-name", names[0]]
    if webroot is not None:
        argv += ["--webroot", "-w", str(webroot)]
    else:
        argv += ["--standalone", "--http-01-address", "127.0.0.1", "--http-01-port", str(standalone_port)]
    for name in names:
        argv += ["-d", name]
    argv += extra or []
    proc = subprocess.run(argv, env=_client_env(**(env or {})), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"certbot failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    live = workdir / "config" / "live" / names[0]
    return Issued((live / "fullchain.pem").read_bytes(), (live / "privkey.pem").read_bytes())


def lego(workdir: Path, directory_url: str, names: list[str], *, http_port: int, timeout: float = 120,
         extra: list[str] | None = None, env: dict[str, str] | None = None) -> Issued:
    """``extra``: more global options (e.g. --eab --kid K --hmac H)."""
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [LEGO, "--server", directory_url, "--email", "admin@example.test", "--accept-tos",
            "--path", str(workdir), "--http", "--http.port", f"127.0.0.1:{http_port}", *(extra or [])]
    for name in names:
        argv += ["--domains", name]
    argv.append("run")
    proc = subprocess.run(argv, env=_client_env(**(env or {})), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"lego failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    certs = workdir / "certificates"
    return Issued((certs / f"{names[0]}.crt").read_bytes(), (certs / f"{names[0]}.key").read_bytes())


def check_certificate(issued: Issued, names: list[str], root_pem: str) -> x509.Certificate:
    """Chain ends at Pebble's root, SANs are exactly the names, the key is the client's own."""
    chain = x509.load_pem_x509_certificates(issued.chain_pem)
    leaf = chain[0]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted(names)
    root = x509.load_pem_x509_certificate(root_pem.encode())
    for child, parent in zip(chain, [*chain[1:], root], strict=True):
        child.verify_directly_issued_by(parent)
    client_key = serialization.load_pem_private_key(issued.key_pem, password=None)
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert leaf.public_key().public_bytes(*spki) == client_key.public_key().public_bytes(*spki)
    return leaf


class Webroot:
    """A plain HTTP server for `--webroot` clients: serves <dir>/.well-known/acme-challenge/."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        handler = partial(_QuietHandler, directory=str(root))
        self.server = _QuietServer(("127.0.0.1", port), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webroot:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.root, ignore_errors=True)


class _QuietServer(ThreadingHTTPServer):
    request_queue_size = 1024  # a herd of validators connects at once (socketserver's default is 5)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a validator that hangs up early (broken pipe) is its own business


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def acme_account(directory_url: str, verify: bool | str = True, *, eab: tuple[str, str] | None = None,
                 headers: dict[str, str] | None = None,
                 network: type[acme_client.ClientNetwork] = acme_client.ClientNetwork) -> acme_client.ClientV2:
    """A registered account through certbot's `acme` library, the client Jackdaw itself uses upstream.
    ``eab``: (key id, HMAC key) to bind it with; ``headers``: sent with every request; ``network``:
    e.g. Jackdaw's own PatientNetwork, which keeps a 409 problem document (alreadyReplaced)."""
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = network(key, alg=jose.ES256, verify_ssl=verify, user_agent="jackdaw-tests")
    net.session.headers.update(headers or {})
    client = acme_client.ClientV2(acme_client.ClientV2.get_directory(directory_url, net), net)
    binding = None
    if eab is not None:
        binding = messages.ExternalAccountBinding.from_data(key.public_key(), eab[0], eab[1], client.directory)
    client.new_account(messages.NewRegistration.from_data(email="admin@example.test", terms_of_service_agreed=True,
                                                          external_account_binding=binding))
    return client


def new_csr(names: list[str]) -> tuple[bytes, bytes]:
    """(key_pem, csr_pem) for the names, made the way certbot makes them."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, crypto_util.make_csr(key_pem, names)


def http01(authz: messages.AuthorizationResource) -> messages.ChallengeBody:
    return next(c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01))


def _run(name: str, argv: list[str], timeout: float,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, env=_client_env(**(env or {})), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _key_and_csr(workdir: Path, names: list[str]) -> tuple[Path, Path]:
    key_pem, csr_pem = new_csr(names)
    (workdir / "domain.key").write_bytes(key_pem)
    (workdir / "domain.csr").write_bytes(csr_pem)
    return workdir / "domain.key", workdir / "domain.csr"


def acme_tiny(workdir: Path, directory_url: str, names: list[str], *, webroot: Path, timeout: float = 120,
              env: dict[str, str] | None = None) -> Issued:
    """Debian's acme-tiny: an account key and a CSR made beforehand, the challenge file written
    into ``webroot``/.well-known/acme-challenge, the chain on stdout. Its self-check fetch is
    off (--disable-check): the test names resolve only through the test bed's BIND."""
    workdir.mkdir(parents=True, exist_ok=True)
    account_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # acme-tiny signs RS256 only
    (workdir / "account.key").write_bytes(account_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    key, csr = _key_and_csr(workdir, names)
    challenges_dir = webroot / ".well-known" / "acme-challenge"
    challenges_dir.mkdir(parents=True, exist_ok=True)
    proc = _run("acme-tiny", ["/usr/bin/acme-tiny", "--account-key", str(workdir / "account.key"), "--csr", str(csr),
                              "--acme-dir", str(challenges_dir), "--directory-url", directory_url,
                              "--disable-check", "--quiet"], timeout, env)
    return Issued(proc.stdout.encode(), key.read_bytes())


def uacme(workdir: Path, directory_url: str, names: list[str], *, webroot: Path, timeout: float = 120,
          env: dict[str, str] | None = None, wrapper: list[str] | None = None) -> Issued:
    """Debian's uacme with its own hook script (uacme.sh) writing into ``webroot``; ``wrapper``:
    argv run in front of it (uacme's libcurl-gnutls trusts only the system's CA file)."""
    workdir.mkdir(parents=True, exist_ok=True)
    challenges_dir = webroot / ".well-known" / "acme-challenge"
    challenges_dir.mkdir(parents=True, exist_ok=True)
    hook_env = {"UACME_CHALLENGE_PATH": str(challenges_dir), **(env or {})}
    common = [*(wrapper or []), "/usr/bin/uacme", "--confdir", str(workdir), "--acme-url", directory_url, "--yes",
              "--type", "EC", "--hook", "/usr/share/uacme/uacme.sh"]
    _run("uacme new", [*common, "new", "admin@example.test"], timeout, hook_env)
    _run("uacme issue", [*common, "issue", *names], timeout, hook_env)
    # GnuTLS writes the EC key's scalar with a leading zero, which cryptography refuses: the
    # same key as OpenSSL re-encodes it
    key = subprocess.run(["openssl", "pkey", "-in", str(workdir / "private" / names[0] / "key.pem")],
                         capture_output=True, check=True).stdout
    return Issued((workdir / names[0] / "cert.pem").read_bytes(), key)


def dehydrated(workdir: Path, directory_url: str, names: list[str], *, webroot: Path, timeout: float = 120,
               env: dict[str, str] | None = None) -> Issued:
    """Debian's dehydrated (bash + curl + openssl) with WELLKNOWN pointing into ``webroot``."""
    workdir.mkdir(parents=True, exist_ok=True)
    challenges_dir = webroot / ".well-known" / "acme-challenge"
    challenges_dir.mkdir(parents=True, exist_ok=True)
    config = workdir / "config"
    config.write_text(f'CA="{directory_url}"\nBASEDIR="{workdir}"\nWELLKNOWN="{challenges_dir}"\n'
                      'CHALLENGETYPE="http-01"\nKEY_ALGO="secp384r1"\nCONTACT_EMAIL="admin@example.test"\n')
    _run("dehydrated --register", ["/usr/bin/dehydrated", "--config", str(config), "--register", "--accept-terms"],
         timeout, env)
    _run("dehydrated --cron", ["/usr/bin/dehydrated", "--config", str(config), "--cron",
                               *[a for n in names for a in ("--domain", n)]], timeout, env)
    live = workdir / "certs" / names[0]
    return Issued((live / "fullchain.pem").read_bytes(), (live / "privkey.pem").read_bytes())


def caddy(workdir: Path, directory_url: str, names: list[str], *, http_port: int, timeout: float = 120,
          trusted_roots: Path | None = None) -> Issued:
    """Debian's Caddy serving ``names``: it obtains their certificate at start (HTTP-01 on
    ``http_port``, its only challenge here), which is read from its storage once written."""
    from tests.testbed import free_port

    workdir.mkdir(parents=True, exist_ok=True)
    roots = f"\n\t\ttrusted_roots {trusted_roots}" if trusted_roots else ""
    (workdir / "Caddyfile").write_text(
        "{\n\tadmin off\n\tskip_install_trust\n"
        f"\thttp_port {http_port}\n\thttps_port {free_port()}\n\tstorage file_system {workdir / 'storage'}\n"
        f"\temail admin@example.test\n\tcert_issuer acme {{\n\t\tdir {directory_url}\n"
        f"\t\tdisable_tlsalpn_challenge{roots}\n\t}}\n}}\n\n"
        f"{', '.join(names)} {{\n\tbind 127.0.0.1\n\trespond \"ok\"\n}}\n")
    env = _client_env(HOME=str(workdir), XDG_DATA_HOME=str(workdir / "data"), XDG_CONFIG_HOME=str(workdir / "config"))
    log = (workdir / "caddy.log").open("w")
    proc = subprocess.Popen(["/usr/bin/caddy", "run", "--config", str(workdir / "Caddyfile"), "--adapter",
                             "caddyfile"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = list((workdir / "storage" / "certificates").glob(f"*/{names[0]}/{names[0]}.crt"))
            if found:
                return Issued(found[0].read_bytes(), found[0].with_suffix(".key").read_bytes())
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"caddy got no certificate:\n{(workdir / 'caddy.log').read_text()[-4000:]}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
