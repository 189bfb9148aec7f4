"""Entry point of the scheduled payment reconciliation, shared by the deployed Lambda
(wired in app.py) and tests, so both run exactly the same code.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.clock import iso, parse_iso
from chalicelib.payments.reconcile import run_reconciliation

# Daily at 03:30 UTC (minute, hour), clear of the hourly billing run at minute 5.
RECONCILIATION_SCHEDULE = (30, 3)
# How far back each run looks. Runs overlap, which is safe because a payment is credited
# once however often it is listed. The margin covers a missed run and PayPal's Transaction
# Search, which lists a payment up to three hours after it happens.
RECONCILIATION_LOOKBACK = timedelta(days=3)


def run_payment_reconciliation(event_time: str) -> dict[str, Any]:
    """Reconcile the payments of the RECONCILIATION_LOOKBACK before `event_time`."""
    since = parse_iso(event_time) - RECONCILIATION_LOOKBACK
    return {"since": iso(since), "gateways": run_reconciliation(since)}
