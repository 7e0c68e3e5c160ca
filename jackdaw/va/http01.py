"""The relay's own HTTP-01 check (RFC 8555 §8.3), made from inside the network.

Resolves the name through the configured resolver, connects to each address on
CHALLENGE_HTTP_PORT with the name as Host, reads a bounded body and compares the key
authorization. Runs in a job thread, never in a request thread.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.resolver
import requests

from jackdaw.dns.resolver import DNSLookupError, make_resolver, resolve_addresses
from jackdaw.protocol import problems

MAX_BODY = 8 * 1024


@dataclass
class ValidationResult:
    problem: problems.AcmeProblem | None
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class HTTP01Validator:
    port: int = 80
    timeout: float = 5.0
    retries: int = 3
    retry_delay: float = 2.0
    resolver: str | None = None

    def validate(self, name: str, token: str, key_authorization: str) -> ValidationResult:
        result = ValidationResult(problem=None)
        for attempt in range(self.retries):
            if attempt:
                time.sleep(self.retry_delay)
            result.problem = self._attempt(name, token, key_authorization, result.records)
            if result.problem is None:
                break
        return result

    def _attempt(
        self, name: str, token: str, expected: str, records: list[dict[str, Any]]
    ) -> problems.AcmeProblem | None:
        try:
            addresses = resolve_addresses(name, make_resolver(self.resolver))
        except (DNSLookupError, dns.exception.DNSException, OSError) as exc:
            return problems.DNS(f"DNS problem looking up {name}: {exc}", identifier=name)
        if not addresses:
            return problems.DNS(f"No A or AAAA records found for {name}", identifier=name)
        path = f"/.well-known/acme-challenge/{token}"
        url = f"http://{name}" + ("" if self.port == 80 else f":{self.port}") + path
        problem: problems.AcmeProblem | None = None
        for address in addresses:
            record: dict[str, Any] = {
                "url": url, "hostname": name, "port": str(self.port),
                "addressesResolved": addresses, "addressUsed": address,
            }
            records.append(record)
            problem = self._fetch(name, address, path, expected, url)
            if problem is None or not isinstance(problem, problems.Connection):
                return problem  # an answer (right or wrong) ends the attempt; only refusals try the next address
        return problem

    def _fetch(self, name: str, address: str, path: str, expected: str, url: str) -> problems.AcmeProblem | None:
        host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
        try:
            with requests.get(
                f"http://{host}:{self.port}{path}",
                headers={"Host": name if self.port == 80 else f"{name}:{self.port}", "User-Agent": "jackdaw-va"},
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            ) as resp:
                body = resp.raw.read(MAX_BODY + 1, decode_content=True)
                status = resp.status_code
        except requests.RequestException as exc:
            return problems.Connection(f"Fetching {url}: {_reason(exc)}", identifier=name)
        if status != 200:
            return problems.Unauthorized(f"Invalid response from {url}: HTTP {status}", identifier=name)
        if len(body) > MAX_BODY:
            return problems.Unauthorized(f"Response from {url} is larger than {MAX_BODY} bytes", identifier=name)
        got = body.decode("utf-8", "replace").strip()
        if got != expected:
            shown = got[:128]
            return problems.IncorrectResponse(
                f"The key authorization file from {url} does not match: got {shown!r}", identifier=name
            )
        return None


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or reset"
    return type(exc).__name__
