"""The stored upstream directory (jackdaw.upstream.directory): what a fetch makes of the profiles
listed before, what is offered at a time, and when the next fetch is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jackdaw.upstream.directory import Stored, job_subject, merge, parse

NOW = datetime(2026, 5, 8, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def since(ago: timedelta) -> dict[str, str]:
    return {"description": "6 days", "since": (NOW - ago).isoformat()}


MERGES = [
    pytest.param({"a": "A", "b": "B"}, {}, {"a": "A", "b": "B"}, {}, [], id="unchanged"),
    pytest.param({}, {}, {"a": "A"}, {}, [], id="first-fetch-withdraws-nothing"),
    pytest.param({"a": "A", "b": "B"}, {}, {"a": "A"}, {"b": {"description": "B", "since": NOW.isoformat()}},
                 ["b"], id="stops-listing-one"),
    pytest.param({"a": "A", "b": "B"}, {}, {}, {"a": {"description": "A", "since": NOW.isoformat()},
                                                "b": {"description": "B", "since": NOW.isoformat()}},
                 ["a", "b"], id="blip-lists-none"),
    pytest.param({"a": "A"}, {"b": since(DAY / 2)}, {"a": "A"}, {"b": since(DAY / 2)}, [], id="still-in-grace"),
    pytest.param({"a": "A"}, {"b": since(2 * DAY)}, {"a": "A"}, {}, [], id="grace-over-forgotten"),
    pytest.param({"a": "A"}, {"b": since(DAY / 2)}, {"a": "A", "b": "B"}, {}, [], id="listed-again"),
]


@pytest.mark.parametrize(("listed", "withdrawn", "found", "after", "new"), MERGES)
def test_merge(listed: dict[str, str], withdrawn: dict[str, dict[str, str]], found: dict[str, str],
               after: dict[str, dict[str, str]], new: list[str]) -> None:
    assert merge(listed, withdrawn, found, NOW, DAY) == (after, new)


def stored(withdrawn: dict[str, tuple[str, datetime]], fetched: datetime | None = NOW - DAY,
           checked: datetime | None = NOW - DAY, error: str | None = None) -> Stored:
    return Stored("https://ca.test/dir", {"a": "A"}, withdrawn, ("ca.test",), "https://ca.test/ari", False,
                  fetched, checked, error)


def test_the_view_offers_a_withdrawn_profile_until_its_grace_ends() -> None:
    row = stored({"b": ("B", NOW - timedelta(hours=23))})
    meta = row.view(DAY, NOW)
    assert meta is not None and meta.profiles == {"a": "A", "b": "B"}
    assert meta.withdrawn == {"b": (NOW - timedelta(hours=23), NOW + timedelta(hours=1))}
    later = row.view(DAY, NOW + timedelta(hours=1))
    assert later is not None and later.profiles == {"a": "A"} and later.withdrawn == {}
    assert row.view(timedelta(0), NOW).profiles == {"a": "A"}  # type: ignore[union-attr]


def test_never_fetched_is_unknown_not_empty() -> None:
    assert stored({}, fetched=None).view(DAY, NOW) is None


@pytest.mark.parametrize(("checked", "every", "due"), [
    pytest.param(None, 600.0, True, id="never"),
    pytest.param(NOW - timedelta(seconds=599), 600.0, False, id="fresh"),
    pytest.param(NOW - timedelta(seconds=600), 600.0, True, id="an-interval-ago"),
])
def test_due(checked: datetime | None, every: float, due: bool) -> None:
    assert stored({}, checked=checked).due(every, NOW) is due


def test_parse_takes_what_the_relay_serves_and_ignores_the_rest() -> None:
    listing = parse({"newAccount": "x", "renewalInfo": "https://ca.test/ari", "meta": {
        "profiles": {"classic": "90 days", "shortlived": "160 hours"}, "caaIdentities": ["ca.test", 7],
        "externalAccountRequired": True}})
    assert listing.profiles == {"classic": "90 days", "shortlived": "160 hours"}
    assert listing.caa_identities == ("ca.test",) and listing.renewal_info == "https://ca.test/ari"
    assert listing.eab_required
    bare = parse({"newAccount": "x", "meta": {"profiles": ["not", "a", "map"]}})
    assert bare.profiles == {} and bare.renewal_info is None and not bare.eab_required


def test_job_subject_fits_its_column() -> None:
    assert job_subject("https://ca.test/dir") == "https://ca.test/dir"
    long = "https://ca.test/" + "x" * 300
    assert job_subject(long).startswith("sha256:") and len(job_subject(long)) <= 255
