"""Single-use tokens sent by e-mail: address verification and password reset.

The customer receives a random token; only its SHA-256 is stored, under "<kind>#<digest>",
with an expiry. Whoever consumes a token deletes it in the same transaction as the change
it authorises, so a token works at most once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from pynamodb.exceptions import DoesNotExist

from chalicelib.clock import iso, now, parse_iso
from chalicelib.errors import InvalidRequest
from chalicelib.models.auth import AuthItem

KIND_VERIFY = "verify"
KIND_RESET = "reset"
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 128
# token_urlsafe output: letters, digits, "-" and "_".
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(kind: str, account_id: str, lifetime: timedelta) -> tuple[str, str]:
    """Store a new token of `kind` for the account; return the token and its digest."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    digest = token_digest(token)
    created = now()
    expires = created + lifetime
    AuthItem(
        f"{kind}#{digest}",
        account_id=account_id,
        created_at=iso(created),
        expires_at=iso(expires),
        expires_epoch=int(expires.timestamp()),
    ).save(condition=AuthItem.pk.does_not_exist())
    return token, digest


def find_token(kind: str, token: str) -> AuthItem:
    """Return the stored token item, or raise InvalidRequest naming the `token` field."""
    if not token or len(token) > MAX_TOKEN_LENGTH or not TOKEN_PATTERN.match(token):
        raise InvalidRequest("token is malformed; copy it from the e-mail", field="token")
    try:
        item = AuthItem.get(f"{kind}#{token_digest(token)}", consistent_read=True)
    except DoesNotExist:
        raise InvalidRequest("token is invalid or was already used", field="token") from None
    if item.expires_at is None or parse_iso(item.expires_at) <= now():
        raise InvalidRequest("token has expired; request a new one", field="token")
    return item
