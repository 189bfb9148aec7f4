"""Sign-up, log-in, password changes and bearer sessions.

Passwords are hashed with argon2id. A session token is "<account id>.<random>", and only
its SHA-256 is stored, under the account, with an expiry, so a leaked table yields no usable
token and all of an account's sessions can be ended with one consistent query. A session is
written only while the password it was opened with is still the current one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib.accounts.verification import send_verification
from chalicelib.billing.shards import shard_for
from chalicelib.clock import HOUR, floor_hour, hour_key, iso, now, parse_iso
from chalicelib.config import settings
from chalicelib.errors import Conflict, InvalidRequest, Unauthenticated
from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.models.auth import AuthItem, Session
from chalicelib.models.base import transact_write
from chalicelib.notify.sender import send_notice

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MAX_EMAIL_LENGTH = 254
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 200
ACCOUNT_ID_BYTES = 9
# An address with one @, no spaces, and a dot in the domain; full RFC 5322 is not needed
# because the verification e-mail proves the address.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ACCOUNT_ID_PATTERN = re.compile(r"^acct_[0-9a-f]{1,64}$")

# argon2id at the OWASP Password Storage Cheat Sheet's first option: 19 MiB, 2 passes.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Compared against when the e-mail is unknown, so a log-in takes as long either way.
_DUMMY_HASH = _hasher.hash("lobster-timing-equaliser")


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not EMAIL_PATTERN.match(email):
        raise InvalidRequest("email is not a valid e-mail address", field="email")
    return email


def check_password_strength(password: str, field: str = "password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"{field} must have at least {MIN_PASSWORD_LENGTH} characters", field=field)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidRequest(f"{field} must have at most {MAX_PASSWORD_LENGTH} characters", field=field)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def identity_key(email: str) -> str:
    return f"email#{email}"


def sign_up(email: str, password: str) -> Account:
    """Create an account and its e-mail identity together, then mail a verification token.

    A taken e-mail is a Conflict. The account starts unverified.
    """
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
    identity = AuthItem(identity_key(email), account_id=account_id, secret_hash=hash_password(password), created_at=iso(created))

    try:
        with transact_write() as transaction:
            transaction.save(identity, condition=AuthItem.pk.does_not_exist())
            transaction.save(account, condition=Account.account_id.does_not_exist())
    except TransactWriteError as error:
        raise Conflict("an account with this e-mail address already exists", field="email") from error

    logger.info("account_created", extra={"account_id": account_id})
    send_verification(account)
    return account


def log_in(email: str, password: str) -> str:
    """Check the password and return a new bearer token."""
    try:
        email = normalise_email(email)
        identity = AuthItem.get(identity_key(email), consistent_read=True)
    except (InvalidRequest, DoesNotExist):
        verify_password(_DUMMY_HASH, password)
        raise Unauthenticated("e-mail address or password is incorrect") from None

    if not verify_password(identity.secret_hash or _DUMMY_HASH, password):
        raise Unauthenticated("e-mail address or password is incorrect")

    account = Account.get(identity.account_id)
    if account.status == "disabled":
        raise Unauthenticated("this account is disabled; contact support")
    return create_session(account.account_id, opened_with=identity)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def change_password(account: Account, current_password: str, new_password: str, keep_session: str | None) -> int:
    """Replace the password after checking the current one, and end every other session.

    `keep_session` is the digest of the session making the change. Pending reset tokens stop
    working. Returns the number of sessions ended.
    """
    check_password_strength(new_password, field="new_password")
    identity = AuthItem.get(identity_key(account.email), consistent_read=True)
    if not verify_password(identity.secret_hash or _DUMMY_HASH, current_password):
        raise InvalidRequest("current_password is incorrect", field="current_password")

    try:
        identity.update(
            actions=[AuthItem.secret_hash.set(hash_password(new_password)), AuthItem.reset_hash.remove()],
            condition=AuthItem.secret_hash == identity.secret_hash,
        )
    except UpdateError as error:
        raise Conflict("the password was changed by another request; log in again") from error

    ended = end_sessions(account.account_id, keep=keep_session)
    logger.info("password_changed", extra={"account_id": account.account_id, "sessions_ended": ended})
    send_notice(account.email, "password_changed", {})
    return ended


def create_session(account_id: str, opened_with: AuthItem | None = None, lifetime: timedelta | None = None) -> str:
    """Store a new session for the account and return its bearer token. It lasts `lifetime`,
    or LOBSTER_SESSION_HOURS when that is None.

    With `opened_with`, the identity whose password was just checked, the session is written
    only if that password is still current, so a log-in racing a password reset cannot
    leave a session behind that the reset did not see.
    """
    token = f"{account_id}.{secrets.token_urlsafe(TOKEN_BYTES)}"
    created = now()
    expires = created + (lifetime or timedelta(hours=settings().session_hours))
    session = Session(
        account_id,
        session_digest(token),
        created_at=iso(created),
        expires_at=iso(expires),
        expires_epoch=int(expires.timestamp()),
    )
    if opened_with is None:
        session.save()
        return token

    try:
        with transact_write() as transaction:
            transaction.condition_check(AuthItem, opened_with.pk, condition=AuthItem.secret_hash == opened_with.secret_hash)
            transaction.save(session)
    except TransactWriteError as error:
        raise Unauthenticated("e-mail address or password is incorrect") from error
    return token


def session_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate_session(token: str) -> tuple[Account, Session]:
    """Return the account and session of a bearer token, or raise Unauthenticated."""
    account_id, _, secret = token.partition(".")
    if not secret or len(token) > MAX_TOKEN_LENGTH or not ACCOUNT_ID_PATTERN.match(account_id):
        raise Unauthenticated("missing or malformed bearer token")
    try:
        session = Session.get(account_id, session_digest(token), consistent_read=True)
    except DoesNotExist:
        raise Unauthenticated("bearer token is invalid or expired") from None
    if parse_iso(session.expires_at) <= now():
        raise Unauthenticated("bearer token is invalid or expired")

    account = Account.get(account_id)
    if account.status == "disabled":
        raise Unauthenticated("this account is disabled; contact support")
    return account, session


def authenticate(token: str) -> Account:
    """Return the account a session token belongs to, or raise Unauthenticated."""
    return authenticate_session(token)[0]


def log_out(session: Session) -> None:
    session.delete()
    logger.info("session_ended", extra={"account_id": session.account_id})


def end_sessions(account_id: str, keep: str | None = None) -> int:
    """Delete every session of the account except the one whose digest is `keep`."""
    ended = [session for session in Session.query(account_id, consistent_read=True) if session.token_hash != keep]
    with Session.batch_write() as batch:
        for session in ended:
            batch.delete(session)
    return len(ended)
