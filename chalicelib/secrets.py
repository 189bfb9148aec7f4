"""Secrets for regions and gateways, looked up by reference and never logged.

A reference is "file:<name>" (a key of the local secrets file, for `make run` and
tests), "ssm:<parameter name>" (AWS Systems Manager Parameter Store, SecureString) or
"secretsmanager:<secret id>". Each resolves to a JSON object of strings.
"""

from __future__ import annotations

import json
import time
from typing import Any

from chalicelib.config import settings
from chalicelib.errors import LobsterError

CACHE_SECONDS = 300

_cache: dict[str, tuple[float, dict[str, str]]] = {}


class SecretUnavailable(LobsterError):
    status = 500
    code = "secret_unavailable"


def get_secret(reference: str | None) -> dict[str, str]:
    """Return the secret object for `reference`; an empty reference yields {}."""
    if not reference:
        return {}

    cached = _cache.get(reference)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]

    value = _load(reference)
    _cache[reference] = (time.monotonic() + CACHE_SECONDS, value)
    return value


def _load(reference: str) -> dict[str, str]:
    scheme, _, name = reference.partition(":")
    if scheme == "file":
        return _from_file(name)
    if scheme == "ssm":
        return _from_ssm(name)
    if scheme == "secretsmanager":
        return _from_secrets_manager(name)
    raise SecretUnavailable(f"secret reference {reference!r} must start with file:, ssm: or secretsmanager:")


def _from_file(name: str) -> dict[str, str]:
    path = settings().secrets_file
    if not path:
        raise SecretUnavailable("LOBSTER_SECRETS_FILE is not set, so file: secrets cannot be read")
    with open(path, encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    if name not in document:
        raise SecretUnavailable(f"secret {name!r} is missing from the local secrets file")
    return _strings(document[name], name)


def _from_ssm(name: str) -> dict[str, str]:
    import boto3

    response = boto3.client("ssm").get_parameter(Name=name, WithDecryption=True)
    return _strings(json.loads(response["Parameter"]["Value"]), name)


def _from_secrets_manager(name: str) -> dict[str, str]:
    import boto3

    response = boto3.client("secretsmanager").get_secret_value(SecretId=name)
    return _strings(json.loads(response["SecretString"]), name)


def _strings(value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise SecretUnavailable(f"secret {name!r} must be a JSON object of strings")
    return dict(value)


def clear_cache() -> None:
    _cache.clear()
