"""Monthly statements: an account's ledger lines of one UTC month as CSV, between the
opening balance (every earlier line) and the closing balance."""

from __future__ import annotations

import csv
import io

from chalicelib.billing.ledger import month_lines
from chalicelib.clock import iso, parse_month_key
from chalicelib.config import settings
from chalicelib.models.ledger import LedgerLine
from chalicelib.money import format_micros

COLUMNS = ("time", "kind", "description", "amount", "currency", "balance")


def statement_csv(account_id: str, month: str) -> str:
    """Render the month's statement; amounts are decimal text, never floats."""
    start = iso(parse_month_key(month))
    opening = sum(line.amount_micros for line in LedgerLine.query(account_id, LedgerLine.line_key < start))
    currency = settings().currency

    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerow((start, "opening_balance", "Balance at the start of the month", "", currency, format_micros(opening)))

    running = opening
    for line in month_lines(account_id, month):
        running += line.amount_micros
        time = line.line_key.split("#", 1)[0]
        writer.writerow((time, line.kind, line.description, format_micros(line.amount_micros), currency, format_micros(running)))

    writer.writerow(("", "closing_balance", "Balance at the end of the month", "", currency, format_micros(running)))
    return output.getvalue()
