"""Each setting's documented default is the code's (README table, both env examples, gunicorn.conf.py).

The README's settings table is the reference. A literal default there must change nothing when
set explicitly; every variable the table names must be one the code reads, and the reverse; a
commented-out `#VAR=value` line in an env example, where the README gives a literal default,
shows that default.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

from jackdaw.settings import LE_PRODUCTION, Settings

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {"RELAY_DOMAIN": "relay.example.com", "ACME_EMAIL": "ops@example.com", "DNS_PROVIDER": "rfc2136"}
GUNICORN = {"JACKDAW_BIND": "bind", "JACKDAW_WORKERS": "workers", "JACKDAW_THREADS": "threads"}
#: defaults the table words instead of spelling them out, as the value that means the same
WORDED = {"LE production": LE_PRODUCTION, "`./data`": "data"}
_LITERAL = re.compile(r"`?[A-Za-z0-9_.:,/=-]+`?")


def _table() -> dict[str, str]:
    """Variable -> default cell, from the README's settings table (`a` / `b` rows split)."""
    text = (ROOT / "README.md").read_text()
    start = text.index("| Variable | Required | Default |")
    rows: dict[str, str] = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        names = re.findall(r"`([A-Z0-9_]+)`", cells[0])
        defaults = [d.strip() for d in re.split(r" / |, ", cells[2])] if len(names) > 1 else [cells[2]]
        if len(defaults) != len(names):
            defaults = [cells[2]] * len(names)
        rows.update(zip(names, defaults, strict=True))
    return rows


def _literal(cell: str) -> str | None:
    cell = WORDED.get(cell, cell)
    if not cell or cell.startswith("(") or not _LITERAL.fullmatch(cell):
        return None
    return cell.strip("`")


TABLE = _table()
LITERALS = {name: value for name, cell in TABLE.items() if (value := _literal(cell)) is not None}


def test_the_table_is_read() -> None:
    assert {"JOB_THREADS", "DATA_DIR", "LE_DIRECTORY", "JACKDAW_WORKERS"} <= LITERALS.keys()
    assert LITERALS["JOB_THREADS"] == "8"


@pytest.mark.parametrize("name", sorted(n for n in LITERALS if n not in GUNICORN))
def test_documented_default_changes_nothing(name: str) -> None:
    assert Settings.parse({**REQUIRED, name: LITERALS[name]}) == Settings.parse(REQUIRED)


@pytest.mark.parametrize("name", sorted(GUNICORN))
def test_gunicorn_defaults(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in GUNICORN:
        monkeypatch.delenv(var, raising=False)
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert str(conf[GUNICORN[name]]) == LITERALS[name]


def _read_by_code() -> set[str]:
    sources = ["jackdaw/settings.py", "jackdaw/envfile.py", "jackdaw/logs.py", "jackdaw/metrics.py",
               "jackdaw/serving.py"]
    code = "".join((ROOT / s).read_text() for s in sources)
    return set(re.findall(r'"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)"', code))


def test_table_and_code_name_the_same_settings() -> None:
    read = _read_by_code()
    read |= {f"{name}_FILE" for name in read}  # envparse: a secret may come from a file
    documented = set(TABLE)
    assert documented - read == set(), "documented but never read"
    # the provider settings have a table of their own
    undocumented = {n for n in read - documented if not n.endswith("_FILE") and not n.startswith(("RFC2136_", "AWS_"))}
    assert undocumented == set(), "read but undocumented"


def test_the_table_names_only_known_settings() -> None:
    """`jackdaw check` takes every name in the README's table (and its _FILE form) as Jackdaw's."""
    from jackdaw.knownkeys import known_names

    assert sorted(set(TABLE) - known_names()) == []
    assert {f"{name}_FILE" for name in TABLE if not name.endswith("_FILE")} <= known_names()


@pytest.mark.parametrize("example", [".env.example", "deploy/jackdaw.env.example"])
def test_env_examples_show_the_readme_default(example: str) -> None:
    shown = re.findall(r"^#([A-Z][A-Z0-9_]+)=(.*)$", (ROOT / example).read_text(), re.M)
    checked = 0
    for name, value in shown:
        # LE_DIRECTORY's lines are the two choices; the deploy example's DATA_DIR is systemd's
        if name in LITERALS and name not in ("LE_DIRECTORY", "DATA_DIR"):
            assert value.strip() == LITERALS[name], f"{example}: #{name}={value} but the README says {LITERALS[name]}"
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("example", ["deploy/jackdaw.env.example"])
def test_the_deploy_env_example_lists_every_setting(example: str) -> None:
    """It says it lists every setting: each one the code reads (and the README's table names)
    is there, set or commented out with its default."""
    listed = set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", (ROOT / example).read_text(), re.M))
    wanted = _read_by_code() | set(TABLE)
    missing = sorted(name for name in wanted if name not in listed and name.removesuffix("_FILE") not in listed)
    assert missing == [], f"{example} misses {missing}"
