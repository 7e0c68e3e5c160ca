"""Amazon Route 53 through boto3: lego's ``route53``.

Credentials are whatever boto3 finds (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE,
the shared config files, an instance or task role). All TXT values of one name form ONE
record set in Route 53, so present and clean-up are read-modify-write of that set, serialized
per name: UPSERT the set with our value added or removed, or DELETE the set (which must match
it exactly) when ours was the last value. A change is never waited for: ``pending`` reports
one still PENDING (GetChange) to the relay's zone job, which looks again at its next round
while it also probes Route 53's name servers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions

from jackdaw import envparse
from jackdaw.dns.base import ConfigError, DNSProvider, DNSProviderError

log = logging.getLogger(__name__)

THROTTLED = frozenset({"Throttling", "ThrottlingException", "PriorRequestNotComplete", "RequestLimitExceeded"})
AUTH_FAILED = frozenset({
    "InvalidClientTokenId", "SignatureDoesNotMatch", "AccessDenied", "AccessDeniedException",
    "UnrecognizedClientException", "ExpiredToken", "InvalidSignatureException",
})


@dataclass(frozen=True)
class Route53Config:
    region: str = "us-east-1"
    hosted_zone_id: str | None = None
    ttl: int = 60

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Route53Config:
        zone_id = env.get("AWS_HOSTED_ZONE_ID", "").strip()
        return cls(
            region=env.get("AWS_REGION", "").strip() or "us-east-1",
            hosted_zone_id=zone_id.removeprefix("/hostedzone/") or None,
            ttl=envparse.integer(env, "AWS_TTL", 60, minimum=1),
        )


def _session(env: Mapping[str, str], region: str) -> Any:
    """A boto3 session from explicit keys/profile in ``env``, else boto3's own credential chain."""
    key_id = env.get("AWS_ACCESS_KEY_ID", "").strip() or None
    secret = env.get("AWS_SECRET_ACCESS_KEY", "").strip() or None
    if key_id and not secret:
        raise ConfigError("AWS_SECRET_ACCESS_KEY: required when AWS_ACCESS_KEY_ID is set")
    if secret and not key_id:
        raise ConfigError("AWS_ACCESS_KEY_ID: required when AWS_SECRET_ACCESS_KEY is set")
    try:
        session = boto3.Session(
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            aws_session_token=env.get("AWS_SESSION_TOKEN", "").strip() or None,
            profile_name=None if key_id else env.get("AWS_PROFILE", "").strip() or None,
            region_name=region,
        )
        credentials = session.get_credentials()
    except botocore.exceptions.ProfileNotFound as e:
        raise ConfigError(f"AWS_PROFILE: {e}") from None
    except botocore.exceptions.BotoCoreError as e:
        raise ConfigError(f"AWS credentials: {type(e).__name__}: {e}") from None
    if credentials is None:
        raise ConfigError(
            "AWS_ACCESS_KEY_ID: no AWS credentials found (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance role)"
        )
    return session


class Route53Provider(DNSProvider):
    """Adds and removes single values inside the one TXT record set of a name."""

    name = "route53"
    env_keys = (
        "AWS_ACCESS_KEY_ID",
        "AWS_HOSTED_ZONE_ID",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_TTL",
    )

    def __init__(self, config: Route53Config, client: Any) -> None:
        self.config = config
        self._client = client
        self._zone_ids: dict[str, str] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        #: the last change submitted per record name, until Route 53 reports it INSYNC
        self._changes: dict[str, str] = {}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Route53Provider:
        config = Route53Config.from_env(env)
        return cls(config, _session(env, config.region).client("route53"))

    def present(self, zone: str, fqdn: str, value: str) -> None:
        zone, fqdn = _norm(zone), _norm(fqdn)
        ours = _quote(value)
        with self._lock_for(fqdn):
            zone_id = self._zone_id(zone)
            current = self._read(zone_id, fqdn)
            values = _values(current)
            if ours in values:
                return  # a retried present: the value is already there
            ttl = current["TTL"] if current else self.config.ttl
            self._change(zone_id, "UPSERT", _record_set(fqdn, ttl, [*values, ours]), f"add TXT value at {fqdn}")
        log.info("route53: added a TXT value at %s", fqdn)

    def cleanup(self, zone: str, fqdn: str, value: str) -> None:
        zone, fqdn = _norm(zone), _norm(fqdn)
        ours = _quote(value)
        with self._lock_for(fqdn):
            zone_id = self._zone_id(zone)
            current = self._read(zone_id, fqdn)
            values = _values(current)
            if current is None or ours not in values:
                return  # already gone
            rest = [v for v in values if v != ours]
            what = f"remove TXT value at {fqdn}"
            if rest:
                self._change(zone_id, "UPSERT", _record_set(fqdn, current["TTL"], rest), what)
            else:  # DELETE must name the set exactly as it is
                self._change(zone_id, "DELETE", _record_set(fqdn, current["TTL"], values), what)
        log.info("route53: removed a TXT value at %s", fqdn)

    def pending(self, zone: str, records: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Records whose last change (from this process) is still PENDING: one GetChange per
        name, never a wait (the relay's zone job asks again at its next round)."""
        busy: set[tuple[str, str]] = set()
        for name in {_norm(fqdn) for fqdn, _ in records}:
            with self._guard:
                change_id = self._changes.get(name)
            if change_id is None:
                continue
            answer = self._aws("get_change", f"check change {change_id}", Id=change_id)
            if answer.get("ChangeInfo", {}).get("Status") == "INSYNC":
                with self._guard:
                    if self._changes.get(name) == change_id:
                        del self._changes[name]
                continue
            busy |= {(fqdn, value) for fqdn, value in records if _norm(fqdn) == name}
        return busy

    def probe(self) -> str:
        """GetHostedZone of AWS_HOSTED_ZONE_ID, else one ListHostedZonesByName: reads only."""
        if self.config.hosted_zone_id:
            answer = self._aws("get_hosted_zone", "read hosted zone AWS_HOSTED_ZONE_ID", Id=self.config.hosted_zone_id)
            return f"credentials read hosted zone {_norm(answer.get('HostedZone', {}).get('Name', '?'))}"
        answer = self._aws("list_hosted_zones_by_name", "list hosted zones", MaxItems="100")
        names = [_norm(z.get("Name", "")) for z in answer.get("HostedZones", [])]
        if not names:
            raise DNSProviderError("route53 list hosted zones: these credentials see no hosted zone")
        return f"credentials see {len(names)} hosted zone(s): {', '.join(names[:5])}"

    def _lock_for(self, fqdn: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(fqdn, threading.Lock())

    def _zone_id(self, zone: str) -> str:
        if self.config.hosted_zone_id:
            return self.config.hosted_zone_id
        with self._guard:
            cached = self._zone_ids.get(zone)
        if cached:
            return cached
        answer = self._aws(
            "list_hosted_zones_by_name", f"look up hosted zone {zone}", DNSName=zone + ".", MaxItems="100"
        )
        zones = [z for z in answer.get("HostedZones", []) if _norm(z.get("Name", "")) == zone]
        if not zones:
            raise DNSProviderError(f"route53: no hosted zone named {zone} is visible to these credentials "
                                   "(or set AWS_HOSTED_ZONE_ID)")
        zones.sort(key=lambda z: bool(z.get("Config", {}).get("PrivateZone")))  # public first
        zone_id = str(zones[0]["Id"]).removeprefix("/hostedzone/")
        with self._guard:
            self._zone_ids[zone] = zone_id
        return zone_id

    def _read(self, zone_id: str, fqdn: str) -> dict[str, Any] | None:
        answer = self._aws(
            "list_resource_record_sets", f"read TXT {fqdn}",
            HostedZoneId=zone_id, StartRecordName=fqdn, StartRecordType="TXT", MaxItems="1",
        )
        for record_set in answer.get("ResourceRecordSets", []):
            if _norm(record_set.get("Name", "")) == fqdn and record_set.get("Type") == "TXT":
                return dict(record_set)
        return None

    def _change(self, zone_id: str, action: str, record_set: dict[str, Any], what: str) -> None:
        batch = {"Comment": "jackdaw dns-01", "Changes": [{"Action": action, "ResourceRecordSet": record_set}]}
        answer = self._aws("change_resource_record_sets", what, HostedZoneId=zone_id, ChangeBatch=batch)
        with self._guard:
            self._changes[_norm(record_set["Name"])] = str(answer["ChangeInfo"]["Id"])

    def _aws(self, operation: str, what: str, **kwargs: Any) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = getattr(self._client, operation)(**kwargs)
        except botocore.exceptions.ClientError as e:
            error = e.response.get("Error", {})
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))
            if code in THROTTLED:
                raise DNSProviderError(f"route53 {what}: rate limited ({code}: {message}); retry later") from e
            if code in AUTH_FAILED:
                raise DNSProviderError(
                    f"route53 {what}: authentication failed ({code}: {message}); check the AWS credentials "
                    "and their route53:ListHostedZonesByName/ListResourceRecordSets/ChangeResourceRecordSets/"
                    "GetChange permissions"
                ) from e
            raise DNSProviderError(f"route53 {what}: {code}: {message}") from e
        except botocore.exceptions.BotoCoreError as e:
            raise DNSProviderError(f"route53 {what}: {type(e).__name__}: {e}") from e
        return answer


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower().replace("\\052", "*")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _values(record_set: dict[str, Any] | None) -> list[str]:
    return [str(r["Value"]) for r in (record_set or {}).get("ResourceRecords", [])]


def _record_set(fqdn: str, ttl: int, values: list[str]) -> dict[str, Any]:
    return {"Name": fqdn + ".", "Type": "TXT", "TTL": ttl, "ResourceRecords": [{"Value": v} for v in values]}
