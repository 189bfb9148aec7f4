"""Credit adjustments by an operator or a promotion: one ledger line and one audit event
per adjustment id.

The audit event's id is built from the account and the adjustment id and is written in
the ledger transaction, so a repeated request, even much later, moves no money. A
positive result lifts automatic suspensions.
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib import audit
from chalicelib.billing.ledger import new_line, post_lines
from chalicelib.clock import now
from chalicelib.errors import Conflict
from chalicelib.log import logger
from chalicelib.money import format_micros


def adjust_credit(
    account_id: str,
    amount_micros: int,
    reason: str,
    adjustment_id: str,
    kind: str = "adjustment",
    *,
    actor_account_id: str = audit.SYSTEM_ACTOR,
    ip: str | None = None,
) -> bool:
    """Post a credit (positive) or debit (negative); return False if the id was used before.

    Raises Conflict (field "adjustment_id") when the id was used for another amount or
    reason, and TransactWriteError when the account does not exist.
    """
    event_id = adjustment_event_id(kind, account_id, adjustment_id)
    line = new_line(
        account_id,
        moment=now(),
        kind=kind,
        reference=adjustment_id,
        amount_micros=amount_micros,
        description=reason,
        batch=kind,
    )
    event = audit.new_event(
        actor_account_id,
        "credit.adjusted",
        f"account:{account_id}",
        {"kind": kind, "adjustment_id": adjustment_id, "amount_micros": amount_micros, "reason": reason, "ledger_key": line.line_key},
        ip,
        event_id=event_id,
    )

    def write_event(transaction: TransactWrite) -> None:
        audit.add_to_transaction(transaction, event)

    try:
        result = post_lines(account_id, [line], extra_write=write_event)
    except TransactWriteError:
        if not _is_repeat(event_id, amount_micros, reason):
            raise
        return False
    if not result.posted:
        _is_repeat(event_id, amount_micros, reason)
        return False

    logger.info("credit_adjusted", extra={"account_id": account_id, "amount_micros": amount_micros, "adjustment_id": adjustment_id})
    if amount_micros > 0:
        from chalicelib.billing.lifecycle import on_credit

        on_credit(account_id)
    return True


def adjustment_event_id(kind: str, account_id: str, adjustment_id: str) -> str:
    return f"{kind}#{account_id}#{adjustment_id}"


def _is_repeat(event_id: str, amount_micros: int, reason: str) -> bool:
    """Return whether a failed transaction repeated a stored adjustment; raise Conflict if
    the stored one used the same id for another amount or reason."""
    stored = audit.get_event(event_id)
    if stored is None:
        return False
    details: dict[str, Any] = stored.details  # type: ignore[assignment]
    if details.get("amount_micros") != amount_micros or details.get("reason") != reason:
        raise Conflict(
            f"adjustment id {details.get('adjustment_id')!r} was already used for an adjustment of "
            f"{format_micros(int(details.get('amount_micros', 0)))} ({details.get('reason')!r}); use a new id",
            field="adjustment_id",
        )
    logger.info("credit_adjustment_repeated", extra={"event_id": event_id})
    return True
