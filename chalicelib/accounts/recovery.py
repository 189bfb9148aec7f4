"""Password reset by e-mail.

A request mails a token valid for `RESET_LIFETIME`; the identity remembers the digest of
the newest one, so an older token stops working when a new one is sent. A reset consumes the
token, sets the password, marks the address verified (the token reached that mailbox) and
ends every session. A request gets the same response whether or not an account uses the address.
"""

from __future__ import annotations

from datetime import timedelta

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.accounts.service import (
    check_password_strength,
    end_sessions,
    hash_password,
    identity_key,
    normalise_email,
)
from chalicelib.accounts.tokens import KIND_RESET, find_token, issue_token, token_digest
from chalicelib.accounts.verification import api_url
from chalicelib.errors import InvalidRequest
from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.models.auth import AuthItem
from chalicelib.models.base import transact_write
from chalicelib.notify.sender import send_notice

RESET_LIFETIME = timedelta(minutes=60)


def request_password_reset(email: str) -> None:
    """Mail a reset token if an active account uses `email`; do nothing visible otherwise."""
    email = normalise_email(email)
    try:
        identity = AuthItem.get(identity_key(email), consistent_read=True)
        account = Account.get(identity.account_id)
    except DoesNotExist:
        logger.info("password_reset_unknown_address")
        return
    if account.status == "disabled":
        logger.info("password_reset_disabled_account", extra={"account_id": account.account_id})
        return

    token, digest = issue_token(KIND_RESET, account.account_id, RESET_LIFETIME)
    identity.update(actions=[AuthItem.reset_hash.set(digest)])
    minutes = int(RESET_LIFETIME.total_seconds() // 60)
    send_notice(email, "password_reset", {"token": token, "api_url": api_url(), "minutes": minutes})
    logger.info("password_reset_requested", extra={"account_id": account.account_id})


def reset_password(token: str, new_password: str, confirmation: str) -> None:
    """Set a new password with a reset token and end every session of the account."""
    check_password_strength(new_password, field="new_password")
    if confirmation != new_password:
        raise InvalidRequest("new_password_confirmation does not match new_password", field="new_password_confirmation")

    item = find_token(KIND_RESET, token)
    digest = token_digest(token)
    account = Account.get(item.account_id)
    identity = AuthItem.get(identity_key(account.email), consistent_read=True)
    if identity.reset_hash != digest:
        raise InvalidRequest("token was replaced by a newer reset e-mail or was already used", field="token")

    try:
        with transact_write() as transaction:
            transaction.update(
                identity,
                actions=[AuthItem.secret_hash.set(hash_password(new_password)), AuthItem.reset_hash.remove()],
                condition=AuthItem.reset_hash == digest,
            )
            transaction.delete(item, condition=AuthItem.pk.exists())
            transaction.update(
                Account(account.account_id),
                actions=[Account.email_verified.set(True)],
                condition=Account.account_id.exists(),
            )
    except TransactWriteError as error:
        raise InvalidRequest("token is invalid or was already used", field="token") from error

    ended = end_sessions(account.account_id)
    logger.info("password_reset", extra={"account_id": account.account_id, "sessions_ended": ended})
    send_notice(account.email, "password_changed", {})
