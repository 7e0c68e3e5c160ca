"""jackdaw.knownkeys: a mistyped setting is caught, with "did you mean"; everybody else's names are not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jackdaw import knownkeys
from jackdaw.dns.registry import PROVIDERS, provider_class
from jackdaw.serving import Serving

ROOT = Path(__file__).resolve().parents[2]


def flagged(file: dict[str, str], environment: dict[str, str] | None = None) -> dict[str, str | None]:
    found = knownkeys.unknown([("jackdaw.env", file)], environment or {})
    return {u.key: u.suggestion for u in found}


def test_the_issues_typos_are_caught_with_a_suggestion() -> None:
    assert flagged({"ALLOWED_DOMIANS": "example.com", "EAB_REQUIERD": "true"}) == {
        "ALLOWED_DOMIANS": "ALLOWED_DOMAINS", "EAB_REQUIERD": "EAB_REQUIRED"}
    line = knownkeys.unknown([("/etc/jackdaw/jackdaw.env", {"EAB_REQUIERD": "true"})], {})[0].line()
    assert line == "EAB_REQUIERD: not a Jackdaw setting (in /etc/jackdaw/jackdaw.env); did you mean EAB_REQUIRED?"


@pytest.mark.parametrize("name", ["RELAY_DOMAIN", "JACKDAW_WORKERS", "JACKDAW_ENV_FILE", "PROMETHEUS_MULTIPROC_DIR",
                                  "RFC2136_TSIG_SECRET", "PORKBUN_SECRET_API_KEY", "AWS_HOSTED_ZONE_ID",
                                  "UPSTREAM_KEY_PASSPHRASE_FILE", "RFC2136_TSIG_SECRET_FILE", "LOG_FORMAT"])
def test_known_names_and_their_file_forms_pass(name: str) -> None:
    assert flagged({name: "x"}, {name: "x"}) == {}


@pytest.mark.parametrize("name", ["TZ", "HTTPS_PROXY", "PYTHONDONTWRITEBYTECODE", "AWS_DEFAULT_REGION",
                                  "AWS_CA_BUNDLE", "PROMETHEUS_DISABLE_CREATED_SERIES", "REQUESTS_CA_BUNDLE",
                                  "NOTIFY_SOCKET", "INVOCATION_ID", "JOURNAL_STREAM", "CREDENTIALS_DIRECTORY"])
def test_other_softwares_names_pass(name: str) -> None:
    """Names the process, systemd (the unit's Type=notify sets NOTIFY_SOCKET) or the libraries
    Jackdaw runs read themselves, in the file or the environment."""
    assert flagged({name: "x"}, {name: "x"}) == {}


def test_systemds_own_names_pass_in_the_environment() -> None:
    """What systemd sets for the unit's processes (RuntimeDirectory=, StateDirectory=, Type=notify)."""
    names = ["RUNTIME_DIRECTORY", "STATE_DIRECTORY", "NOTIFY_SOCKET", "INVOCATION_ID", "MAINPID", "WATCHDOG_USEC"]
    assert knownkeys.unknown([], dict.fromkeys(names, "x")) == []


def test_the_environment_is_judged_by_prefix_alone() -> None:
    """The environment holds everybody's variables: only Jackdaw's own prefixes count there."""
    environment = {"RELAY_DOMIAN": "x", "NOTIFY_WEBHOK_URL": "x", "DATA_HOME": "x", "LOG_DIR": "x", "JOB_ID": "1",
                   "ALOWED_DOMAINS": "x"}
    assert knownkeys.unknown([], environment) == [
        knownkeys.Unknown("RELAY_DOMIAN", "the environment", "RELAY_DOMAIN"),
        knownkeys.Unknown("NOTIFY_WEBHOK_URL", "the environment", "NOTIFY_WEBHOOK_URL")]
    # in the settings file, a near miss counts whatever its prefix, and an unknown Jackdaw prefix too
    assert flagged({"ALOWED_DOMAINS": "x", "RELAY_FOO": "x"}) == {"ALOWED_DOMAINS": "ALLOWED_DOMAINS",
                                                                  "RELAY_FOO": None}


def test_a_name_is_reported_once_where_the_file_sets_it() -> None:
    found = knownkeys.unknown([("jackdaw.env", {"EAB_REQUIERD": "1"})], {"EAB_REQUIERD": "1"})
    assert [(u.key, u.where) for u in found] == [("EAB_REQUIERD", "jackdaw.env")]


def test_known_names_come_from_the_readers() -> None:
    """Every name the code reads (found in its source, as test_documented_defaults does) is
    known, and the settings' names are exactly those Settings.parse reads."""
    sources = ["jackdaw/settings.py", "jackdaw/envfile.py", "jackdaw/logs.py", "jackdaw/serving.py"]
    code = "".join((ROOT / s).read_text() for s in sources)
    read = set(re.findall(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"', code))
    assert read - knownkeys.known_names() == set()
    assert set(Serving.__dataclass_fields__) == {"bind", "workers", "threads", "access_log", "multiproc_dir"}


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_each_providers_env_keys_are_what_its_module_reads(name: str) -> None:
    cls = provider_class(name)
    source = Path(__import__(cls.__module__, fromlist=["_"]).__file__ or "").read_text()
    assert set(cls.env_keys) == set(re.findall(r'"([A-Z][A-Z0-9]*_[A-Z0-9_]*)"', source))


@pytest.mark.parametrize("example", [".env.example", "deploy/jackdaw.env.example"])
def test_the_env_examples_hold_no_unknown_name(example: str) -> None:
    listed = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", (ROOT / example).read_text(), re.M))
    assert sorted(listed - knownkeys.known_names()) == []
