"""The customer's own account: balance, hourly cost and the ledger by month."""

from __future__ import annotations

import re

from chalice import Blueprint, Response

from chalicelib.api.http import SECURITY_HEADERS, current_account, json_response, route
from chalicelib.api.schema import query_param
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


@route(blueprint, "/v1/account", ["GET"])
def get_account() -> object:
    account = current_account(blueprint.current_request)
    return json_response(
        {
            "account_id": account.account_id,
            "email": account.email,
            "currency": settings().currency,
            "balance": money_json(account.balance_micros),
            "hourly_cost": money_json(hourly_cost(account.account_id)),
            "vm_limit": account.vm_limit,
            "billed_through": account.billed_through,
        }
    )


def _requested_month() -> str:
    month = query_param(blueprint.current_request.query_params, "month") or month_key(now())
    if not MONTH_PATTERN.match(month):
        raise InvalidRequest("month must be YYYY-MM between 2000-01 and 2999-12, for example 2026-12", field="month")
    return month


@route(blueprint, "/v1/ledger.csv", ["GET"])
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


@route(blueprint, "/v1/ledger", ["GET"])
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
