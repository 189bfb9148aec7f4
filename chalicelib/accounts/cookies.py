"""Browser sessions for the web panel: the session token travels in an HttpOnly cookie that
no page script can read, and every cookie-authenticated write must echo a CSRF token.

The CSRF token is derived from the session token (a keyed hash of it), so it needs no storage,
changes with every session, and proves the caller could read the panel's own cookie: a page
on another site can send the session cookie (SameSite=Strict already stops most browsers from
doing so) but cannot read the CSRF cookie to copy it into the header.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

SESSION_COOKIE = "lobster_session"
CSRF_COOKIE = "lobster_csrf"
# While an admin impersonates a customer, the admin's own session waits in this cookie and
# comes back when the impersonation session logs out.
ADMIN_COOKIE = "lobster_admin_session"
CSRF_HEADER = "x-csrf-token"
MAX_COOKIE_HEADER_LENGTH = 8192
_CSRF_LABEL = b"lobster-csrf-v1"


def csrf_token(session_token: str) -> str:
    """Return the CSRF token that goes with a session token."""
    digest = hmac.new(_CSRF_LABEL, session_token.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_matches(session_token: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(csrf_token(session_token), sent or "")


def read_cookies(header: str | None) -> dict[str, str]:
    """Parse a Cookie request header into names and values; the first of a repeated name wins."""
    cookies: dict[str, str] = {}
    if not header or len(header) > MAX_COOKIE_HEADER_LENGTH:
        return cookies
    for part in header.split(";"):
        name, separator, value = part.strip().partition("=")
        if separator and name and name not in cookies:
            cookies[name] = value.strip().strip('"')
    return cookies


def session_from_cookies(headers: Mapping[str, str]) -> str | None:
    return read_cookies(headers.get("cookie")).get(SESSION_COOKIE) or None


def admin_session_from_cookies(headers: Mapping[str, str]) -> str | None:
    return read_cookies(headers.get("cookie")).get(ADMIN_COOKIE) or None


def login_cookies(session_token: str, max_age_seconds: int) -> list[str]:
    """Return the Set-Cookie values that open a browser session."""
    return [
        _cookie(SESSION_COOKIE, session_token, max_age_seconds, http_only=True),
        _cookie(CSRF_COOKIE, csrf_token(session_token), max_age_seconds, http_only=False),
    ]


def impersonation_cookies(customer_token: str, admin_token: str, customer_seconds: int, admin_seconds: int) -> list[str]:
    """Return the Set-Cookie values that switch an admin's browser to a customer's session."""
    return [*login_cookies(customer_token, customer_seconds), _cookie(ADMIN_COOKIE, admin_token, admin_seconds, http_only=True)]


def restore_admin_cookies(admin_token: str, max_age_seconds: int) -> list[str]:
    """Return the Set-Cookie values that end an impersonation and give back the admin session."""
    return [*login_cookies(admin_token, max_age_seconds), _cookie(ADMIN_COOKIE, "", 0, http_only=True)]


def logout_cookies() -> list[str]:
    return [_cookie(name, "", 0, http_only=name != CSRF_COOKIE) for name in (SESSION_COOKIE, CSRF_COOKIE, ADMIN_COOKIE)]


def _cookie(name: str, value: str, max_age_seconds: int, *, http_only: bool) -> str:
    attributes = [f"{name}={value}", "Path=/", f"Max-Age={max_age_seconds}", "Secure", "SameSite=Strict"]
    if http_only:
        attributes.append("HttpOnly")
    return "; ".join(attributes)
