"""Secret settings: which they are, and where each one's value comes from.

A secret may be given three ways, exactly one at a time:

- ``NAME=value`` in the environment (or the env file);
- ``NAME_FILE=/path``: the file's first line, its newline stripped (Docker secrets,
  ``/run/secrets/...``);
- a systemd credential named ``NAME`` (``LoadCredential=NAME:/path`` in the unit): the file
  ``$CREDENTIALS_DIRECTORY/NAME``, which systemd makes readable to the service alone.

``resolve`` reads them all once, for ``Settings.parse``: everything downstream (the settings
fields, the DNS providers' ``from_env``) sees plain ``NAME=value`` and never a file. The same
list decides what `jackdaw check --show` masks and the log redacts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jackdaw.envparse import ConfigError

#: every secret setting Jackdaw reads; each is also read from NAME_FILE and a systemd credential
SECRETS: tuple[str, ...] = (
    "UPSTREAM_KEY_PASSPHRASE",
    "LE_EAB_HMAC_KEY",
    "STATUS_TOKEN",
    "NOTIFY_WEBHOOK_SECRET",
    "NOTIFY_SMTP_PASSWORD",
    "RFC2136_TSIG_SECRET",
    "PORKBUN_API_KEY",
    "PORKBUN_SECRET_API_KEY",
    "CLOUDFLARE_API_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "NAMECHEAP_API_KEY",
    "ACME_DNS_CREDENTIALS",
)
#: secrets whose value is the path of a file of secrets (acme-dns's JSON accounts file): from
#: NAME_FILE or a credential they become that file's path, not its content
PATH_SECRETS = frozenset({"ACME_DNS_CREDENTIALS"})
#: words of a setting name Jackdaw does not know (a third-party provider's) that make it secret
SECRET_WORDS = ("SECRET", "KEY", "TOKEN", "PASSWORD", "PASS", "PRIVATE", "HMAC", "CREDENTIAL")
#: systemd's variable naming the service's credentials directory (LoadCredential=)
CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"


def is_secret(name: str) -> bool:
    """A listed secret, or a name that looks like one (third-party providers' settings)."""
    upper = name.upper()
    return upper in SECRETS or any(word in upper for word in SECRET_WORDS)


@dataclass(frozen=True)
class Secret:
    #: None when not given at all
    value: str | None
    #: where it came from: "env", "file PATH", "credential PATH"; "" when not given
    source: str


def _credential(env: Mapping[str, str], name: str) -> Path | None:
    directory = env.get(CREDENTIALS_DIRECTORY, "").strip()
    if not directory:
        return None
    path = Path(directory) / name
    return path if path.is_file() else None


def _content(key: str, path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise ConfigError(f"{key}: cannot read {str(path)!r}: {reason}") from None
    value = (text.splitlines() or [""])[0].strip()  # the first line, as `echo secret > file` leaves it
    if not value:
        raise ConfigError(f"{key}: {str(path)!r} is empty")
    return value


def read(env: Mapping[str, str], name: str) -> Secret:
    """The one reader of a secret setting: NAME, NAME_FILE or the credential NAME; two of them
    at once is a configuration error (which one was meant?)."""
    value = env.get(name, "").strip()
    file_path = env.get(f"{name}_FILE", "").strip()
    credential = _credential(env, name)
    given = [where for where, there in (("env", value), (f"{name}_FILE", file_path),
                                         ("credential", credential)) if there]
    if len(given) > 1:
        places = {"env": name, f"{name}_FILE": f"{name}_FILE", "credential": f"the credential {credential}"}
        named = [places[g] for g in given]
        raise ConfigError(f"{name}: set either {named[0]} or {named[1]}, not both" if len(named) == 2 else
                          f"{name}: set one of {', '.join(named[:-1])} or {named[-1]}, not all of them")
    if value:
        return Secret(value, "env")
    if file_path:
        if name in PATH_SECRETS:
            return Secret(file_path, f"file {file_path}")
        return Secret(_content(f"{name}_FILE", Path(file_path)), f"file {file_path}")
    if credential is not None:
        if name in PATH_SECRETS:
            return Secret(str(credential), f"credential {credential}")
        return Secret(_content(name, credential), f"credential {credential}")
    return Secret(None, "")


def resolve(env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """``env`` with every secret's value in place of its NAME_FILE / credential, and where each
    given secret came from (NAME -> source)."""
    resolved = dict(env)
    resolved.pop(CREDENTIALS_DIRECTORY, None)  # read here alone; parsing the result again finds no twice-given secret
    sources: dict[str, str] = {}
    for name in SECRETS:
        secret = read(env, name)
        resolved.pop(f"{name}_FILE", None)
        if secret.value is None:
            resolved.pop(name, None)
        else:
            resolved[name] = secret.value
            sources[name] = secret.source
    return resolved, sources
