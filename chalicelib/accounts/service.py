"""Sign-up, log-in and bearer sessions.

Passwords are hashed with argon2id; session tokens are random and only their SHA-256
is stored, with an expiry, so a leaked table does not yield usable tokens.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.billing.shards import shard_for
from chalicelib.clock import HOUR, floor_hour, hour_key, iso, now, parse_iso
from chalicelib.config import settings
from chalicelib.errors import Conflict, InvalidRequest, Unauthenticated
from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.models.auth import AuthItem
from chalicelib.models.base import transact_write

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MAX_EMAIL_LENGTH = 254
TOKEN_BYTES = 32
ACCOUNT_ID_BYTES = 9
# An address with one @, no spaces, and a dot in the domain; full RFC 5322 is not needed
# because the verification e-mail proves the address.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# argon2id at the OWASP Password Storage Cheat Sheet's first option: 19 MiB, 2 passes.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Compared against when the e-mail is unknown, so a log-in takes as long either way.
_DUMMY_HASH = _hasher.hash("lobster-timing-equaliser")


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not EMAIL_PATTERN.match(email):
        raise InvalidRequest("email is not a valid e-mail address", field="email")
    return email


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"password must have at least {MIN_PASSWORD_LENGTH} characters", field="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidRequest(f"password must have at most {MAX_PASSWORD_LENGTH} characters", field="password")


def sign_up(email: str, password: str) -> Account:
    """Create an account and its e-mail identity together; a taken e-mail is a Conflict."""
    email = normalise_email(email)
    check_password_strength(password)

    account_id = "acct_" + secrets.token_hex(ACCOUNT_ID_BYTES)
    created = now()
    account = Account(
        account_id,
        email=email,
        created_at=iso(created),
        vm_limit=settings().default_vm_limit,
        billing_shard=shard_for(account_id),
        billed_through=hour_key(floor_hour(created) - HOUR),
    )
    identity = AuthItem(f"email#{email}", account_id=account_id, secret_hash=_hasher.hash(password), created_at=iso(created))

    try:
        with transact_write() as transaction:
            transaction.save(identity, condition=AuthItem.pk.does_not_exist())
            transaction.save(account, condition=Account.account_id.does_not_exist())
    except TransactWriteError as error:
        raise Conflict("an account with this e-mail address already exists", field="email") from error

    logger.info("account_created", extra={"account_id": account_id})
    return account


def log_in(email: str, password: str) -> str:
    """Check the password and return a new bearer token."""
    try:
        email = normalise_email(email)
        identity = AuthItem.get(f"email#{email}")
    except (InvalidRequest, DoesNotExist):
        _verify(_DUMMY_HASH, password)
        raise Unauthenticated("e-mail address or password is incorrect") from None

    if not _verify(identity.secret_hash or _DUMMY_HASH, password):
        raise Unauthenticated("e-mail address or password is incorrect")

    account = Account.get(identity.account_id)
    if account.status == "disabled":
        raise Unauthenticated("this account is disabled; contact support")
    return create_session(account.account_id)


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_session(account_id: str) -> str:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires = now() + timedelta(hours=settings().session_hours)
    AuthItem(
        _session_key(token),
        account_id=account_id,
        created_at=iso(now()),
        expires_at=iso(expires),
        expires_epoch=int(expires.timestamp()),
    ).save()
    return token


def authenticate(token: str) -> Account:
    """Return the account a bearer token belongs to, or raise Unauthenticated."""
    if not token or len(token) > 200:
        raise Unauthenticated("missing or malformed bearer token")
    try:
        session = AuthItem.get(_session_key(token))
    except DoesNotExist:
        raise Unauthenticated("bearer token is invalid or expired") from None
    if session.expires_at is None or parse_iso(session.expires_at) <= now():
        raise Unauthenticated("bearer token is invalid or expired")

    account = Account.get(session.account_id)
    if account.status == "disabled":
        raise Unauthenticated("this account is disabled; contact support")
    return account


def _session_key(token: str) -> str:
    return "session#" + hashlib.sha256(token.encode()).hexdigest()
