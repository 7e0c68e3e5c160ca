"""The budget ledger's token-bucket arithmetic (jackdaw.ledger), by properties, and its settings."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jackdaw.budget import registered_domain, set_key
from jackdaw.envparse import ConfigError
from jackdaw.ledger import Limit, parse_limit, refill, wait_for

limits = st.builds(Limit, st.just("l"), st.integers(1, 10_000), st.floats(1.0, 30 * 86400.0))
elapsed = st.floats(0.0, 60 * 86400.0)


@st.composite
def bucket(draw: st.DrawFn) -> tuple[Limit, float]:
    limit = draw(limits)
    return limit, draw(st.floats(0.0, float(limit.capacity)))


@settings(max_examples=300, derandomize=True)
@given(bucket(), elapsed, elapsed)
def test_refill_in_two_steps_is_refill_in_one(b: tuple[Limit, float], a: float, c: float) -> None:
    limit, tokens = b
    assert math.isclose(refill(refill(tokens, limit, a), limit, c), refill(tokens, limit, a + c),
                        rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=300, derandomize=True)
@given(bucket(), elapsed, elapsed)
def test_refill_is_capped_and_never_loses_tokens(b: tuple[Limit, float], a: float, c: float) -> None:
    limit, tokens = b
    low, high = sorted((a, c))
    assert tokens <= refill(tokens, limit, low) <= refill(tokens, limit, high) <= limit.capacity
    assert refill(tokens, limit, -abs(a)) == tokens  # a clock that went backwards refills nothing


@settings(max_examples=300, derandomize=True)
@given(bucket(), st.integers(0, 5), st.integers(0, 5))
def test_waiting_the_time_told_is_enough_and_not_more(b: tuple[Limit, float], cost: int, floor: int) -> None:
    limit, tokens = b
    if cost + floor > limit.capacity:
        return  # never satisfiable: the bucket cannot hold that much
    wait = wait_for(tokens, cost, floor, limit)
    assert wait >= 0
    assert refill(tokens, limit, wait) >= cost + floor - 1e-6
    if wait > 1e-6:  # a moment sooner would not have been enough
        assert refill(tokens, limit, wait * 0.999) < cost + floor


def test_lets_encrypt_numbers() -> None:
    orders = parse_limit("new-orders", "300/3h", "K")
    assert orders is not None and orders.interval == 36.0  # one order per 36 s, as the rate-limits page says
    per_domain = parse_limit("certs-per-domain", "50/7d", "K")
    assert per_domain is not None and round(per_domain.interval / 60) == 202  # one per 202 minutes
    per_set = parse_limit("certs-per-set", "5/7d", "K")
    assert per_set is not None and round(per_set.interval / 3600, 1) == 33.6  # one per ~34 hours
    assert parse_limit("x", "off", "K") is None and parse_limit("x", "0", "K") is None


@pytest.mark.parametrize("text", ["", "300", "300/", "/3h", "300/3y", "0/3h", "3/0h", "a/3h", "-1/3h"])
def test_bad_limits_name_the_setting(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^BUDGET_X: "):
        parse_limit("x", text, "BUDGET_X")


@pytest.mark.parametrize(
    ("name", "registered"),
    [("www.example.com", "example.com"), ("a.b.example.co.uk", "example.co.uk"), ("*.x.example.org", "example.org"),
     ("host.example.test", "example.test"), ("co.uk", "co.uk")],
)
def test_registered_domains_come_from_the_public_suffix_list(name: str, registered: str) -> None:
    assert registered_domain(name) == registered


def test_a_set_is_the_same_set_in_any_order() -> None:
    assert set_key(["b.example.com", "a.example.com"]) == set_key(["a.example.com", "b.example.com", "a.example.com"])
    assert set_key(["a.example.com"]) != set_key(["a.example.com", "b.example.com"])
