"""Credit adjustments by an operator or a promotion: one ledger line per adjustment id.

The id makes a repeated request harmless; a positive result lifts automatic suspensions.
"""

from __future__ import annotations

from chalicelib.billing.ledger import new_line, post_lines
from chalicelib.clock import now
from chalicelib.log import logger


def adjust_credit(account_id: str, amount_micros: int, reason: str, adjustment_id: str, kind: str = "adjustment") -> bool:
    """Post a credit (positive) or debit (negative); return False if the id was used before."""
    line = new_line(
        account_id,
        moment=now(),
        kind=kind,
        reference=adjustment_id,
        amount_micros=amount_micros,
        description=reason,
        batch=kind,
    )
    result = post_lines(account_id, [line])
    if not result.posted:
        return False

    logger.info("credit_adjusted", extra={"account_id": account_id, "amount_micros": amount_micros, "adjustment_id": adjustment_id})
    if amount_micros > 0:
        from chalicelib.billing.lifecycle import on_credit

        on_credit(account_id)
    return True
