"""Payments for the operator: every gateway payment, or those flagged for review (paid in
another currency, outside the bounds, under- or overpaid, for an unknown account).
"""

from __future__ import annotations

from chalicelib import audit
from chalicelib.admin.paging import Page, scan_page
from chalicelib.models.payments import Payment

PAYMENT_KEY_NAMES = frozenset({"payment_key"})


def list_payments(limit: int, cursor: str | None, flagged_only: bool, account_id: str | None = None) -> Page[Payment]:
    """Return one account's payments (a query on account-index) or everyone's (a paged scan)."""
    condition = (Payment.flags.exists() & (Payment.flags != [])) if flagged_only else None
    if not account_id:
        return scan_page(Payment, PAYMENT_KEY_NAMES, limit=limit, cursor=cursor, filter_condition=condition)

    start = audit.decode_cursor(cursor, {"account_id": account_id}, frozenset({"payment_key", "created_at"}))
    results = Payment.account_index.query(
        account_id,
        scan_index_forward=False,
        filter_condition=condition,
        limit=limit,
        last_evaluated_key=start,
    )
    items = list(results)
    return Page(items, audit.encode_cursor(results.last_evaluated_key))
