"""E-mail address verification: a single-use token mailed at sign-up and on request.

An unverified account may log in, read, add credit and manage its keys, but the API edge
rejects requests to create VMs or images (see `VERIFIED_EMAIL_ACTIONS` in chalicelib.api.http).
"""

from __future__ import annotations

from datetime import timedelta

from pynamodb.exceptions import TransactWriteError

from chalicelib.accounts.tokens import KIND_VERIFY, find_token, issue_token
from chalicelib.config import public_url
from chalicelib.errors import Conflict, InvalidRequest
from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.models.auth import AuthItem
from chalicelib.models.base import transact_write
from chalicelib.notify.sender import send_notice

VERIFICATION_LIFETIME = timedelta(hours=48)


def api_url() -> str:
    """The public base URL of the API, quoted in e-mails."""
    return public_url()


def send_verification(account: Account) -> None:
    """Mail a new verification token to the account's address."""
    token, _ = issue_token(KIND_VERIFY, account.account_id, VERIFICATION_LIFETIME)
    hours = int(VERIFICATION_LIFETIME.total_seconds() // 3600)
    send_notice(account.email, "verify_email", {"token": token, "api_url": api_url(), "hours": hours})


def request_verification(account: Account) -> None:
    """Mail another verification token, unless the address is already verified."""
    if account.email_verified:
        raise Conflict("the e-mail address is already verified")
    send_verification(account)


def verify_email(token: str) -> Account:
    """Consume a verification token and mark its account's address verified."""
    item = find_token(KIND_VERIFY, token)
    try:
        with transact_write() as transaction:
            transaction.delete(item, condition=AuthItem.pk.exists())
            transaction.update(
                Account(item.account_id),
                actions=[Account.email_verified.set(True)],
                condition=Account.account_id.exists(),
            )
    except TransactWriteError as error:
        raise InvalidRequest("token is invalid or was already used", field="token") from error

    logger.info("email_verified", extra={"account_id": item.account_id})
    return Account.get(item.account_id, consistent_read=True)
