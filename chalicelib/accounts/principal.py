"""Who is calling: the account behind an `Authorization: Bearer` header, with the session or
API key that proved it. Only authentication happens here; what the caller may do is decided
at the API edge.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.accounts.apikeys import authenticate_key, is_key_token
from chalicelib.accounts.service import authenticate_session
from chalicelib.errors import Unauthenticated
from chalicelib.models.accounts import Account
from chalicelib.models.apikeys import ApiKey
from chalicelib.models.auth import Session


@dataclass(frozen=True)
class Principal:
    account: Account
    session: Session | None = None
    api_key: ApiKey | None = None


def authenticate_header(header: str) -> Principal:
    """Return the principal of an Authorization header value, or raise Unauthenticated."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("send an Authorization: Bearer <token> header; get a token from /v1/auth/login")

    if not is_key_token(token):
        account, session = authenticate_session(token)
        return Principal(account, session=session)

    key = authenticate_key(token)
    try:
        account = Account.get(key.account_id)
    except Account.DoesNotExist:
        raise Unauthenticated("API key is invalid or revoked") from None
    if account.status == "disabled":
        raise Unauthenticated("this account is disabled; contact support")
    return Principal(account, api_key=key)
