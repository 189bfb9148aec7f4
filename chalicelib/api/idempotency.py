"""`Idempotency-Key` on mutating requests, through Powertools' idempotency utility.

A request runs once per (caller, method, route, key) for `KEY_LIFETIME_SECONDS`. A repeat with
the same body gets the first response again, marked `Idempotent-Replayed: true`. A different
body is a 409, and so is a repeat while the first is still running. Only 2xx responses are kept,
because an error changed nothing and a retry should run again. Fields that contain a secret
shown once are stored, and so replayed, as null.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from chalice import Response

from chalicelib.config import settings
from chalicelib.errors import Conflict, InvalidRequest
from chalicelib.models.idempotency import IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_LIFETIME_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255
# Every route shares one key space; the caller, method and route are part of each key.
KEY_PREFIX = "lobster-api"


class _NotStored(Exception):
    """Carries a response that must not be kept, so Powertools releases the key."""

    def __init__(self, response: Response) -> None:
        super().__init__("response not stored")
        self.response = response


def read_key(headers: Any) -> str | None:
    """Return the request's Idempotency-Key, None without one, or raise InvalidRequest."""
    key = headers.get(HEADER.lower())
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidRequest(f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters, such as a UUID", field=HEADER)
    return key


def run_once(
    scope: str,
    key: str,
    request_id: str,
    raw_body: str | bytes | None,
    produce: Callable[[], Response],
    secret_fields: tuple[str, ...] = (),
    lambda_context: Any = None,
) -> Response:
    """Run `produce` unless this caller already sent `key` for the request `request_id`."""
    fresh: list[Response] = []

    def execute(request: dict[str, str]) -> dict[str, Any]:
        response = produce()
        if not 200 <= response.status_code < 300 or not isinstance(response.body, str):
            raise _NotStored(response)
        fresh.append(response)
        return _stored_form(response, secret_fields)

    request = {"scope": scope, "request": request_id, "key": key, "body": _body_digest(raw_body)}
    config = IdempotencyConfig(
        event_key_jmespath="[scope, request, key]",
        payload_validation_jmespath="body",
        expires_after_seconds=KEY_LIFETIME_SECONDS,
        hash_function="sha256",
        lambda_context=lambda_context,
    )
    once = idempotent_function(data_keyword_argument="request", persistence_store=_store(), config=config, key_prefix=KEY_PREFIX)

    try:
        stored = once(execute)(request=request)
    except _NotStored as outcome:
        return outcome.response
    except IdempotencyValidationError:
        raise Conflict(f"{HEADER} {key!r} was already used with a different request body; use a new key", field=HEADER) from None
    except IdempotencyAlreadyInProgressError:
        raise Conflict(f"a request with {HEADER} {key!r} is still running; retry after it finishes", field=HEADER) from None

    if fresh:
        return fresh[0]
    return Response(body=stored["body"], status_code=stored["status"], headers={**stored["headers"], REPLAYED_HEADER: "true"})


def _stored_form(response: Response, secret_fields: tuple[str, ...]) -> dict[str, Any]:
    body = response.body
    if secret_fields and body:
        document = json.loads(body)
        if isinstance(document, dict):
            body = json.dumps({name: (None if name in secret_fields else value) for name, value in document.items()})
    # Cookies carry session tokens: a replay never sets them again, and they are never stored.
    headers = {name: value for name, value in (response.headers or {}).items() if name.lower() != "set-cookie"}
    return {"status": response.status_code, "body": body, "headers": headers}


def _body_digest(raw_body: str | bytes | None) -> str:
    """Return the SHA-256 of the body, with JSON compared by content so whitespace and key order don't matter."""
    raw = raw_body.encode() if isinstance(raw_body, str) else raw_body or b""
    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


@lru_cache(maxsize=1)
def _store() -> DynamoDBPersistenceLayer:
    config = settings()
    client = boto3.client("dynamodb", region_name=config.region, endpoint_url=config.dynamodb_endpoint)
    return DynamoDBPersistenceLayer(table_name=IdempotencyRecord.Meta.table_name, boto3_client=client)
