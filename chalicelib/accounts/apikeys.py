"""API keys: bearer credentials "lbk_<key id>_<secret>" that a customer creates and revokes.

The secret is 256 random bits, shown once, and stored only as its SHA-256. A key may be
limited to route action names ("vms:read", or "vms:*" for every VM action) and to client
address ranges (IPv4 and IPv6 CIDRs). The last use is written at most once a minute per key.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.clock import iso, now
from chalicelib.errors import Forbidden, InvalidRequest, LimitReached, NotFound, Unauthenticated
from chalicelib.log import logger
from chalicelib.models.apikeys import ApiKey

KEY_PREFIX = "lbk_"
KEY_ID_BYTES = 8
SECRET_BYTES = 32
MAX_TOKEN_LENGTH = 128
MAX_KEYS_PER_ACCOUNT = 20
MAX_LABEL_LENGTH = 64
MAX_ACTIONS = 50
MAX_CIDRS = 20
LAST_USE_INTERVAL = timedelta(minutes=1)
KEY_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
ACTION_WILDCARD = "*"
UNKNOWN_ADDRESS = "unknown"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def create_key(
    account_id: str,
    label: str,
    actions: list[str] | None,
    allowed_cidrs: list[str] | None,
    known_actions: Iterable[str],
) -> tuple[ApiKey, str]:
    """Store a new key for the account; return it with the bearer token, shown only now."""
    label = _check_label(label)
    actions = normalise_actions(actions, frozenset(known_actions))
    allowed_cidrs = normalise_cidrs(allowed_cidrs)
    if _count_keys(account_id) >= MAX_KEYS_PER_ACCOUNT:
        raise LimitReached(f"an account can have at most {MAX_KEYS_PER_ACCOUNT} API keys; revoke one first")

    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    key = ApiKey(
        key_id,
        account_id=account_id,
        label=label,
        secret_hash=_secret_digest(secret),
        actions=actions,
        allowed_cidrs=allowed_cidrs,
        created_at=iso(now()),
    )
    key.save(condition=ApiKey.key_id.does_not_exist())
    logger.info("api_key_created", extra={"account_id": account_id, "key_id": key_id})
    return key, f"{KEY_PREFIX}{key_id}_{secret}"


def list_keys(account_id: str) -> list[ApiKey]:
    # NOTE: the account index is eventually consistent, so a key created a moment ago may be
    # missing from the list for up to about a second on AWS.
    return list(ApiKey.account_index.query(account_id))


def revoke_key(account_id: str, key_id: str) -> None:
    """Delete one of the account's keys; another account's key is reported as not found."""
    key = _get_key(key_id)
    if key is None or key.account_id != account_id:
        raise NotFound(f"API key {key_id!r} not found", field="key_id")
    key.delete()
    logger.info("api_key_revoked", extra={"account_id": account_id, "key_id": key_id})


def is_key_token(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def authenticate_key(token: str) -> ApiKey:
    """Return the key a bearer token names if its secret matches; raise Unauthenticated otherwise."""
    key_id, _, secret = token.removeprefix(KEY_PREFIX).partition("_")
    if len(token) > MAX_TOKEN_LENGTH or not secret or not KEY_ID_PATTERN.match(key_id):
        raise Unauthenticated("malformed API key; it looks like lbk_<key id>_<secret>")
    key = _get_key(key_id)
    if key is None or not hmac.compare_digest(key.secret_hash, _secret_digest(secret)):
        raise Unauthenticated("API key is invalid or revoked")
    return key


def check_address(key: ApiKey, address: Address | None) -> None:
    """Raise Forbidden unless the key has no address limit or `address` is inside one of its ranges."""
    if not key.allowed_cidrs:
        return
    if address is None:
        raise Forbidden(f"API key {key.key_id} is limited to client address ranges and the client address is unknown")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    networks = [ipaddress.ip_network(cidr) for cidr in _strings(key.allowed_cidrs)]
    if not any(address.version == network.version and address in network for network in networks):
        raise Forbidden(f"API key {key.key_id} may not be used from {address}")


def check_action(key: ApiKey, action: str | None) -> None:
    """Raise Forbidden unless the key has no action limit or lists `action` or its resource's wildcard."""
    if not key.actions:
        return
    if action is None:
        raise Forbidden(f"API key {key.key_id} is limited to actions, and this route has none")
    allowed = _strings(key.actions)
    resource = action.partition(":")[0]
    if action not in allowed and f"{resource}:{ACTION_WILDCARD}" not in allowed:
        raise Forbidden(f"API key {key.key_id} may not call {action}; its actions are {', '.join(allowed)}")


def record_use(key: ApiKey, address: Address | None) -> None:
    """Store the time and address of this use, unless the stored use is under a minute old."""
    moment = now()
    stale_before = iso(moment - LAST_USE_INTERVAL)
    if key.last_used_at is not None and key.last_used_at > stale_before:
        return
    try:
        key.update(
            actions=[ApiKey.last_used_at.set(iso(moment)), ApiKey.last_used_ip.set(str(address) if address else UNKNOWN_ADDRESS)],
            condition=ApiKey.key_id.exists() & (ApiKey.last_used_at.does_not_exist() | (ApiKey.last_used_at <= stale_before)),
        )
    except UpdateError as error:
        # Another request recorded a use within the minute, or the key was just revoked.
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise


def key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.key_id,
        "label": key.label,
        "actions": _strings(key.actions),
        "allowed_cidrs": _strings(key.allowed_cidrs),
        "created_at": key.created_at,
        "last_used_at": key.last_used_at,
        "last_used_ip": key.last_used_ip,
    }


def normalise_actions(actions: list[str] | None, known_actions: frozenset[str]) -> list[str]:
    """Check each action against the route actions keys may call; None means no limit."""
    if actions is None:
        return []
    if not actions:
        raise InvalidRequest("actions must list at least one action; leave it out for a key without action limits", field="actions")
    if len(actions) > MAX_ACTIONS:
        raise InvalidRequest(f"actions may list at most {MAX_ACTIONS} actions", field="actions")
    resources = {action.partition(":")[0] for action in known_actions}
    for action in actions:
        resource, _, verb = action.partition(":")
        if action in known_actions or (verb == ACTION_WILDCARD and resource in resources):
            continue
        raise InvalidRequest(f"unknown action {action!r}; expected one of {', '.join(sorted(known_actions))}, or <resource>:*", field="actions")
    return sorted(set(actions))


def normalise_cidrs(cidrs: list[str] | None) -> list[str]:
    """Parse IPv4 and IPv6 ranges; a bare address is a range of one. None means no limit."""
    if cidrs is None:
        return []
    if not cidrs:
        raise InvalidRequest("allowed_cidrs must list at least one range; leave it out for a key usable from anywhere", field="allowed_cidrs")
    if len(cidrs) > MAX_CIDRS:
        raise InvalidRequest(f"allowed_cidrs may list at most {MAX_CIDRS} ranges", field="allowed_cidrs")
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=True))
        except ValueError as error:
            raise InvalidRequest(f"allowed_cidrs entry {cidr!r} is not a valid IPv4 or IPv6 range: {error}", field="allowed_cidrs") from None
    return sorted({str(network) for network in networks})


def _check_label(label: str) -> str:
    label = label.strip()
    if not label or len(label) > MAX_LABEL_LENGTH or not label.isprintable():
        raise InvalidRequest(f"label must be 1 to {MAX_LABEL_LENGTH} printable characters", field="label")
    return label


def _strings(values: Iterable[Any] | None) -> list[str]:
    """Return a stored list as plain strings, because PynamoDB types its elements as attributes."""
    return [str(value) for value in values or []]


def _count_keys(account_id: str) -> int:
    return sum(1 for _ in ApiKey.account_index.query(account_id))


def _get_key(key_id: str) -> ApiKey | None:
    if not KEY_ID_PATTERN.match(key_id):
        return None
    try:
        return ApiKey.get(key_id, consistent_read=True)
    except DoesNotExist:
        return None


def _secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
