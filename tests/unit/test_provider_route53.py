"""Route 53 provider against moto's Route 53 (``mock_aws``) and botocore's Stubber.

Moto implements the Route 53 API (ListHostedZonesByName, ListResourceRecordSets,
ChangeResourceRecordSets, GetChange answering INSYNC). GetChange answering PENDING, and error
shapes that moto does not produce, are stubbed as the Route 53 API reference documents them
(https://docs.aws.amazon.com/Route53/latest/APIReference/CommonErrors.html): AccessDenied
(HTTP 403) and Throttling "Rate exceeded" (HTTP 400). Requests are recorded with botocore's
``before-parameter-build`` event, i.e. exactly the parameters sent to the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from jackdaw.dns.base import ConfigError, DNSProviderError
from jackdaw.dns.providers.route53 import Route53Provider
from jackdaw.dns.registry import build_provider

KEY_ID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ENV = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
ZONE, FQDN = "example.com", "_acme-challenge.www.example.com"
MINE, WILDCARD, FOREIGN = "A" * 43, "B" * 43, "kept by someone else"


@pytest.fixture(autouse=True)
def isolated_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No real credentials, config files or instance metadata can leak into a test."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def route53() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("route53", region_name="us-east-1")


def make_zone(route53: Any, name: str = ZONE, private: bool = False) -> str:
    extra: dict[str, Any] = {}
    if private:
        extra = {"HostedZoneConfig": {"PrivateZone": True, "Comment": "internal"},
                 "VPC": {"VPCRegion": "us-east-1", "VPCId": "vpc-12345678"}}
    zone = route53.create_hosted_zone(Name=name, CallerReference=f"{name}-{private}", **extra)["HostedZone"]
    return str(zone["Id"]).removeprefix("/hostedzone/")


def txt_values(route53: Any, zone_id: str, name: str = FQDN) -> list[str] | None:
    sets = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    found = [s for s in sets if s["Name"] == name + "." and s["Type"] == "TXT"]
    return [r["Value"] for r in found[0]["ResourceRecords"]] if found else None


def provider(**extra: str) -> Route53Provider:
    made = build_provider("route53", {**ENV, **extra})
    assert isinstance(made, Route53Provider)
    return made


def record_changes(p: Route53Provider) -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        changes.extend(params["ChangeBatch"]["Changes"])

    p._client.meta.events.register("before-parameter-build.route53.ChangeResourceRecordSets", hook)
    return changes


def q(value: str) -> str:
    return f'"{value}"'


def test_values_are_added_to_and_removed_from_the_one_record_set(route53: Any) -> None:
    zone_id = make_zone(route53)
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [{
        "Action": "CREATE",
        "ResourceRecordSet": {"Name": FQDN, "Type": "TXT", "TTL": 300, "ResourceRecords": [{"Value": q(FOREIGN)}]},
    }]})
    p = provider()
    changes = record_changes(p)
    p.present(ZONE, FQDN, MINE)
    p.present(ZONE, FQDN, WILDCARD)
    assert txt_values(route53, zone_id) == [q(FOREIGN), q(MINE), q(WILDCARD)]
    p.cleanup(ZONE, FQDN, MINE)
    assert txt_values(route53, zone_id) == [q(FOREIGN), q(WILDCARD)]

    def upsert(*values: str) -> dict[str, Any]:
        return {"Action": "UPSERT", "ResourceRecordSet": {
            "Name": FQDN + ".", "Type": "TXT", "TTL": 300, "ResourceRecords": [{"Value": v} for v in values]}}

    # the existing TTL is kept and the foreign value is written back untouched every time
    assert changes == [upsert(q(FOREIGN), q(MINE)), upsert(q(FOREIGN), q(MINE), q(WILDCARD)),
                       upsert(q(FOREIGN), q(WILDCARD))]


def test_the_last_value_deletes_the_set_exactly_as_it_is(route53: Any) -> None:
    zone_id = make_zone(route53)
    p = provider(AWS_TTL="120")
    changes = record_changes(p)
    p.present(ZONE, FQDN, MINE)
    p.present(ZONE, FQDN, MINE)  # a retried present changes nothing
    p.cleanup(ZONE, FQDN, MINE)
    p.cleanup(ZONE, FQDN, MINE)  # nor does a repeated clean-up
    assert txt_values(route53, zone_id) is None
    record_set = {"Name": FQDN + ".", "Type": "TXT", "TTL": 120, "ResourceRecords": [{"Value": q(MINE)}]}
    assert changes == [{"Action": "UPSERT", "ResourceRecordSet": record_set},
                       {"Action": "DELETE", "ResourceRecordSet": record_set}]


def test_the_public_zone_wins_over_a_private_one_of_the_same_name(route53: Any) -> None:
    private_id = make_zone(route53, private=True)
    public_id = make_zone(route53)
    provider().present(ZONE, FQDN, MINE)
    assert txt_values(route53, public_id) == [q(MINE)]
    assert txt_values(route53, private_id) is None


def test_a_given_hosted_zone_id_skips_the_lookup(route53: Any) -> None:
    zone_id = make_zone(route53)
    p = provider(AWS_HOSTED_ZONE_ID=f"/hostedzone/{zone_id}")
    lookups: list[Any] = []
    p._client.meta.events.register("before-parameter-build.route53.ListHostedZonesByName",
                                   lambda **kw: lookups.append(kw))
    p.present(ZONE, FQDN, MINE)
    assert lookups == [] and txt_values(route53, zone_id) == [q(MINE)]


def test_missing_zone(route53: Any) -> None:
    make_zone(route53, "example.org")
    with pytest.raises(DNSProviderError, match=r"no hosted zone named example\.com"):
        provider().present(ZONE, FQDN, MINE)


def test_authentication_failure(route53: Any) -> None:
    p = provider()
    with Stubber(p._client) as stub:
        stub.add_client_error("list_hosted_zones_by_name", service_error_code="AccessDenied", http_status_code=403,
                              service_message="User: arn:aws:iam::123456789012:user/relay is not authorized to "
                                              "perform: route53:ListHostedZonesByName")
        with pytest.raises(DNSProviderError, match=r"authentication failed \(AccessDenied") as e:
            p.present(ZONE, FQDN, MINE)
    assert KEY_ID not in str(e.value) and SECRET not in str(e.value)


def test_rate_limiting(route53: Any) -> None:
    p = provider(AWS_HOSTED_ZONE_ID="Z1D633PJN98FT9")
    with Stubber(p._client) as stub:
        stub.add_client_error("list_resource_record_sets", service_error_code="Throttling",
                              service_message="Rate exceeded", http_status_code=400)
        with pytest.raises(DNSProviderError, match=r"rate limited \(Throttling: Rate exceeded\)") as e:
            p.present(ZONE, FQDN, MINE)
    assert SECRET not in str(e.value)


def test_a_failed_clean_up_leaves_the_value_for_a_retry_and_spares_the_other(
    route53: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone_id = make_zone(route53)
    p = provider()
    p.present(ZONE, FQDN, MINE)
    p.present(ZONE, FQDN, WILDCARD)

    real_change = p._client.change_resource_record_sets
    failures = iter([True])

    def flaky(**kwargs: Any) -> Any:
        if next(failures, False):
            error = {"Error": {"Code": "PriorRequestNotComplete", "Message": "The request was rejected because "
                               "Route 53 was still processing a prior request."}}
            raise botocore.exceptions.ClientError(error, "ChangeResourceRecordSets")
        return real_change(**kwargs)

    monkeypatch.setattr(p._client, "change_resource_record_sets", flaky)
    with pytest.raises(DNSProviderError, match=r"rate limited \(PriorRequestNotComplete"):
        p.cleanup(ZONE, FQDN, MINE)
    assert txt_values(route53, zone_id) == [q(MINE), q(WILDCARD)]
    p.cleanup(ZONE, FQDN, WILDCARD)  # the other value is still removed
    assert txt_values(route53, zone_id) == [q(MINE)]
    p.cleanup(ZONE, FQDN, MINE)  # the retry
    assert txt_values(route53, zone_id) is None


def test_a_change_is_reported_pending_until_route53_says_insync(route53: Any) -> None:
    """present returns at once; ``pending`` asks GetChange (one call, never a wait) and reports
    the record until the change is INSYNC, then forgets the change."""
    make_zone(route53)
    p = provider()
    p.present(ZONE, FQDN, MINE)
    [change_id] = p._changes.values()
    other = ("_acme-challenge.other.example.com", "x")
    with Stubber(p._client) as stub:
        stub.add_response("get_change", {"ChangeInfo": {"Id": change_id, "Status": "PENDING",
                                                         "SubmittedAt": "2026-12-02T12:00:00Z"}}, {"Id": change_id})
        assert p.pending(ZONE, [(FQDN, MINE), other]) == {(FQDN, MINE)}  # nothing submitted for the other
        stub.add_response("get_change", {"ChangeInfo": {"Id": change_id, "Status": "INSYNC",
                                                         "SubmittedAt": "2026-12-02T12:00:00Z"}}, {"Id": change_id})
        assert p.pending(ZONE, [(FQDN, MINE)]) == set()
        stub.assert_no_pending_responses()
    assert p.pending(ZONE, [(FQDN, MINE)]) == set()  # forgotten: no further GetChange


def test_moto_reports_changes_insync(route53: Any) -> None:
    make_zone(route53)
    p = provider()
    p.present_many(ZONE, [(FQDN, MINE), (FQDN, WILDCARD)])
    assert p.pending(ZONE, [(FQDN, MINE), (FQDN, WILDCARD)]) == set()


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        pytest.param({}, "AWS_ACCESS_KEY_ID", id="no-credentials-anywhere"),
        pytest.param({"AWS_ACCESS_KEY_ID": KEY_ID}, "AWS_SECRET_ACCESS_KEY", id="key-id-without-secret"),
        pytest.param({"AWS_SECRET_ACCESS_KEY": SECRET}, "AWS_ACCESS_KEY_ID", id="secret-without-key-id"),
        pytest.param({"AWS_PROFILE": "nope"}, "AWS_PROFILE", id="unknown-profile"),
        pytest.param({**ENV, "AWS_TTL": "0"}, "AWS_TTL", id="bad-ttl"),
    ],
)
def test_config_errors_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=f"^{variable}:") as e:
        build_provider("route53", env)
    assert SECRET not in str(e.value)


def test_config_defaults() -> None:
    p = build_provider("route53", {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET})
    assert isinstance(p, Route53Provider)
    assert (p.config.region, p.config.ttl, p.config.hosted_zone_id) == ("us-east-1", 60, None)
    assert SECRET not in repr(p.config)
