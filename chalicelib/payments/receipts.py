"""The "payment received" notice, sent once per applied credit.

A notice is claimed by adding its credit key to the payment's `notified` set with a
conditional update before it is sent, so concurrent or repeated deliveries send it once.
NOTE: a process that dies between the claim and the send loses that notice; the credit
itself is stored either way.
"""

from __future__ import annotations

from pynamodb.exceptions import PynamoDBException, UpdateError

from chalicelib.config import settings
from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.models.payments import Payment
from chalicelib.money import format_micros
from chalicelib.notify.sender import send_notice

CREDIT_KEY = "credit"  # the guard key of a payment's first credit; later top-ups are "credit:<total>"
TEMPLATE = "payment_received"


def is_credit_key(key: str) -> bool:
    return key == CREDIT_KEY or key.startswith(f"{CREDIT_KEY}:")


def send_receipts(payment: Payment) -> int:
    """Send the notices of the payment's applied credits that no delivery claimed yet; return how many."""
    if not payment.account_id:
        return 0
    pending = sorted(key for key in payment.applied if is_credit_key(key) and key not in payment.notified)

    sent = 0
    for key in pending:
        if not _claim(payment, key):
            continue
        _send(payment, key)
        sent += 1
    return sent


def _claim(payment: Payment, key: str) -> bool:
    try:
        payment.update(
            actions=[Payment.notified.add({key})],
            condition=~Payment.notified.contains(key),
            add_version_condition=False,
        )
    except UpdateError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            logger.error(
                "payment_receipt_failed", extra={"payment": payment.payment_key, "transition": key, "error": str(error)}
            )
        return False
    return True


def _send(payment: Payment, key: str) -> None:
    try:
        account = Account.get(payment.account_id, consistent_read=True)
    except PynamoDBException as error:
        logger.error(
            "payment_receipt_failed", extra={"payment": payment.payment_key, "transition": key, "error": str(error)}
        )
        return

    currency = settings().currency
    context: dict[str, object] = {
        "amount": format_micros(payment.amounts.get(key, 0)),
        "currency": currency,
        "gateway": payment.gateway,
        "payment_id": payment.gateway_payment_id,
        "balance": format_micros(account.balance_micros),
    }
    send_notice(account.email, TEMPLATE, context)
    logger.info(
        "payment_receipt_sent",
        extra={"account_id": account.account_id, "payment": payment.payment_key, "transition": key},
    )
