"""The customer's own account: balance, hourly cost and the ledger by month."""

from __future__ import annotations

import re

from chalice import Blueprint, Response

from chalicelib.accounts import cookies
from chalicelib.api.http import SECURITY_HEADERS, current_account, json_response, request_query, route
from chalicelib.api.schema import Field, Schema
from chalicelib.billing.costs import hourly_cost
from chalicelib.billing.ledger import month_lines
from chalicelib.billing.statements import statement_csv
from chalicelib.clock import month_key, now
from chalicelib.config import settings
from chalicelib.errors import InvalidRequest
from chalicelib.money import money_json

blueprint = Blueprint(__name__)

# Years 2000 to 2999: the ledger contains no earlier line, and the pattern keeps month
# arithmetic inside what datetime supports.
MONTH_PATTERN = re.compile(r"^2\d{3}-(0[1-9]|1[0-2])$")
LEDGER_QUERY = Schema("LedgerQuery", (Field("month", required=False, max_length=7, description="UTC month as YYYY-MM; default the current month"),))


@route(blueprint, "/v1/account", ["GET"])
def get_account() -> object:
    request = blueprint.current_request
    account = current_account(request)
    return json_response(
        {
            "account_id": account.account_id,
            "email": account.email,
            "email_verified": account.email_verified,
            "role": account.role,
            "status": account.status,
            # True while an admin's panel session looks at this account as the customer.
            "impersonated": cookies.admin_session_from_cookies(request.headers) is not None,
            "currency": settings().currency,
            "balance": money_json(account.balance_micros),
            "hourly_cost": money_json(hourly_cost(account.account_id)),
            "vm_limit": account.vm_limit,
            "billed_through": account.billed_through,
        }
    )


def _requested_month() -> str:
    month = request_query().get("month") or month_key(now())
    if not MONTH_PATTERN.match(month):
        raise InvalidRequest("month must be YYYY-MM between 2000-01 and 2999-12, for example 2026-12", field="month")
    return month


@route(blueprint, "/v1/ledger.csv", ["GET"], query=LEDGER_QUERY, media_type="text/csv")
def get_statement() -> object:
    account = current_account(blueprint.current_request)
    month = _requested_month()
    return Response(
        body=statement_csv(account.account_id, month),
        status_code=200,
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="lobster-statement-{month}.csv"',
            **SECURITY_HEADERS,
        },
    )


@route(blueprint, "/v1/ledger", ["GET"], query=LEDGER_QUERY)
def get_ledger() -> object:
    account = current_account(blueprint.current_request)
    month = _requested_month()

    lines = [
        {
            "key": line.line_key,
            "kind": line.kind,
            "description": line.description,
            "amount": money_json(line.amount_micros),
            "created_at": line.created_at,
        }
        for line in month_lines(account.account_id, month)
    ]
    total = sum(line["amount"]["micros"] for line in lines)  # type: ignore[index]
    return json_response({"month": month, "lines": lines, "total": money_json(total)})
