"""A real nginx on loopback ports, configured from deploy/nginx-jackdaw.conf, and HTTPS helpers
that reach a host name on 127.0.0.1 with SNI and full verification (no /etc/hosts entry).

Not a test module: tests/e2e/test_nginx.py and tests/unit/test_deploy.py use it.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Self

from cryptography import x509

from tests.testbed import _Process, free_port

ROOT = Path(__file__).resolve().parent.parent
SITE_TEMPLATE = ROOT / "deploy" / "nginx-jackdaw.conf"
NGINX = "/usr/sbin/nginx"
#: the only names the template leaves to envsubst (nginx's own $variables must stay)
TEMPLATE_VARS = ("RELAY_DOMAIN", "JACKDAW_UPSTREAM", "RELAY_CERT_DIR")


def render_site(values: Mapping[str, str], template: Path = SITE_TEMPLATE) -> str:
    """What `envsubst '${RELAY_DOMAIN} ${JACKDAW_UPSTREAM} ${RELAY_CERT_DIR}'` makes of the template."""
    text = template.read_text()
    for name in TEMPLATE_VARS:
        assert f"${{{name}}}" in text, f"{template} no longer uses ${{{name}}}"
        text = text.replace(f"${{{name}}}", values[name])
    left = re.findall(r"\$\{\w+\}", text)
    assert not left, f"{template}: unknown template variables {left}"
    return text


def on_ports(site: str, http_port: int, https_port: int) -> str:
    """The site with its :80 / :443 listeners moved to 127.0.0.1 ports (IPv6 ones dropped)."""
    rules = [
        (r"^\s*listen \[::\]:(80|443)\b[^;]*;\n", "", 2),
        (r"^(\s*)listen 80;", rf"\1listen 127.0.0.1:{http_port};", 1),
        (r"^(\s*)listen 443 ssl;", rf"\1listen 127.0.0.1:{https_port} ssl;", 1),
    ]
    for pattern, replacement, expected in rules:
        site, count = re.subn(pattern, replacement, site, flags=re.MULTILINE)
        assert count == expected, f"deploy/nginx-jackdaw.conf: {pattern!r} matched {count} times, not {expected}"
    return site


def main_conf(prefix: Path, site: Path) -> str:
    return f"""\
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {site};
}}
"""


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Nginx(_Process):
    """nginx in the foreground (`daemon off`), master + one worker, with the Jackdaw site."""

    name = "nginx"

    def __init__(self, workdir: Path, domain: str, upstream: str, cert_dir: Path,
                 edit: Callable[[str], str] | None = None) -> None:
        """``edit``: what an operator changes in the rendered site (e.g. an ``allow`` line)."""
        super().__init__(workdir)
        self.domain = domain
        self.http_port = free_port()
        self.https_port = free_port()
        self.conf = self.workdir / "nginx.conf"
        site = render_site({"RELAY_DOMAIN": domain, "JACKDAW_UPSTREAM": upstream, "RELAY_CERT_DIR": str(cert_dir)})
        if edit is not None:
            site = edit(site)
        (self.workdir / "jackdaw.conf").write_text(on_ports(site, self.http_port, self.https_port))
        self.conf.write_text(main_conf(self.workdir, self.workdir / "jackdaw.conf"))

    def argv(self, *extra: str) -> list[str]:
        return [NGINX, "-p", str(self.workdir), "-c", str(self.conf), "-e", str(self.workdir / "error.log"), *extra]

    @property
    def reload_command(self) -> str:
        return " ".join(self.argv("-s", "reload"))

    @property
    def base_url(self) -> str:
        return f"https://{self.domain}:{self.https_port}"

    def test_config(self) -> None:
        proc = subprocess.run(self.argv("-t"), capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr

    def start(self) -> Self:
        self._spawn(self.argv())
        self._wait_until(self._listening, "listening")
        return self

    def workers(self) -> set[int]:
        """Pids of the master's worker processes now (old ones linger while a reload drains)."""
        assert self.proc is not None
        master, found = self.proc.pid, set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                found.add(int(stat.parent.name))
        return found

    def _listening(self) -> bool:
        return accepts(self.https_port)


class RoundRobin(_Process):
    """nginx on a loopback port in front of several Jackdaw instances, plain HTTP: the
    multi-instance set-up of the README (round robin, a POST that cannot reach one instance
    goes to the next)."""

    name = "nginx"

    def __init__(self, workdir: Path, upstreams: list[str]) -> None:
        super().__init__(workdir)
        self.port = free_port()
        servers = "".join(f"        server {u} max_fails=1 fail_timeout=2s;\n" for u in upstreams)
        site = f"""\
    upstream jackdaw {{
{servers}        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        client_max_body_size 2m;
        location / {{
            proxy_pass http://jackdaw;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_connect_timeout 1s;
            proxy_read_timeout 75s;
            proxy_next_upstream error timeout non_idempotent;
        }}
    }}
"""
        (self.workdir / "front.conf").write_text(site)
        self.conf = self.workdir / "nginx.conf"
        self.conf.write_text(main_conf(self.workdir, self.workdir / "front.conf"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._spawn([NGINX, "-p", str(self.workdir), "-c", str(self.conf), "-e", str(self.workdir / "error.log")])
        self._wait_until(self._listening, "listening")
        return self

    def _listening(self) -> bool:
        return accepts(self.port)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to ``host`` (SNI, Host header, certificate check) at 127.0.0.1: what a client with
    ``host`` in its hosts file would do."""

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def tls_context(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))


def served_certificate(host: str, port: int, cafile: Path) -> x509.Certificate:
    """The certificate the server presents for SNI ``host``, verified against ``cafile``."""
    conn = PinnedHTTPSConnection(host, port, context=tls_context(cafile), timeout=5)
    try:
        conn.connect()
        assert isinstance(conn.sock, ssl.SSLSocket)
        der = conn.sock.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der)
    finally:
        conn.close()


def get(host: str, port: int, path: str, cafile: Path, method: str = "GET",
        headers: Mapping[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes, int]:
    """(response, body, serial of the certificate served) over one fresh TLS connection."""
    conn = PinnedHTTPSConnection(host, port, context=tls_context(cafile), timeout=10)
    try:
        conn.connect()
        assert isinstance(conn.sock, ssl.SSLSocket)
        der = conn.sock.getpeercert(binary_form=True)
        assert der is not None
        conn.request(method, path, headers=dict(headers or {}))
        response = conn.getresponse()
        return response, response.read(), x509.load_der_x509_certificate(der).serial_number
    finally:
        conn.close()
