"""Who is calling: the account behind an `Authorization: Bearer` header or the panel's
session cookie, with the session or API key that proved it. Only authentication happens here;
what the caller may do is decided at the API edge.

A cookie carries only a session token, never an API key, and a write sent with the cookie
must echo its CSRF token in the X-CSRF-Token header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.accounts import cookies
from chalicelib.accounts.apikeys import authenticate_key, is_key_token
from chalicelib.accounts.service import authenticate_session
from chalicelib.errors import Forbidden, Unauthenticated
from chalicelib.models.accounts import Account
from chalicelib.models.apikeys import ApiKey
from chalicelib.models.auth import Session


@dataclass(frozen=True)
class Principal:
    account: Account
    session: Session | None = None
    api_key: ApiKey | None = None


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def authenticate_request(method: str, headers: Mapping[str, str]) -> Principal:
    """Return the principal of a request's Authorization header, or else of its session cookie.

    Raises Unauthenticated without valid credentials and Forbidden when a cookie-authenticated
    write lacks the matching CSRF token.
    """
    header = headers.get("authorization", "")
    token = cookies.session_from_cookies(headers)
    if header or token is None:
        return authenticate_header(header)

    if method.upper() not in SAFE_METHODS and not cookies.csrf_matches(token, headers.get(cookies.CSRF_HEADER)):
        raise Forbidden(
            f"send the value of the {cookies.CSRF_COOKIE} cookie in the X-CSRF-Token header",
            field="X-CSRF-Token",
        )
    if is_key_token(token):
        raise Unauthenticated("invalid session cookie: it contains an API key; log in to the panel again")
    account, session = authenticate_session(token)
    return Principal(account, session=session)


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
