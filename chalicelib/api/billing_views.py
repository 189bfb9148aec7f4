"""The customer's billing outlook: hourly cost and runway, and bandwidth per region."""

from __future__ import annotations

import re
from datetime import datetime

from chalice import Blueprint

from chalicelib.api.http import current_account, json_response, request_query, route
from chalicelib.api.schema import Field, Schema
from chalicelib.billing.lifecycle import NOTICES_BEFORE_SUSPENSION, NOTICES_BEFORE_TERMINATION
from chalicelib.clock import iso, month_key, now
from chalicelib.config import settings
from chalicelib.errors import InvalidRequest
from chalicelib.money import format_micros, money_json, round_half_up
from chalicelib.usage.pools import bandwidth_summary
from chalicelib.usage.runway import account_runway

blueprint = Blueprint(__name__)

MONTH_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
BANDWIDTH_QUERY = Schema("BandwidthQuery", (Field("month", required=False, max_length=7, description="UTC month as YYYY-MM; default the current month"),))


@route(blueprint, "/v1/account/runway", ["GET"])
def get_runway() -> object:
    account = current_account(blueprint.current_request)
    cost, projection = account_runway(account)
    return json_response(
        {
            "currency": settings().currency,
            "balance": money_json(int(account.balance_micros)),
            "hourly_cost": {
                "vms": money_json(cost.vms),
                "storage": money_json(cost.storage),
                "bandwidth_overage": money_json(cost.bandwidth_overage),
                "total": money_json(cost.total),
            },
            "hours_left": projection.hours_left,
            "credit_runs_out_at": _iso_or_none(projection.credit_runs_out_at),
            "low_credit_notices_sent": int(account.low_credit_notices or 0),
            "next_low_credit_notice_at": _iso_or_none(projection.next_notice_at),
            "suspension_at": _iso_or_none(projection.suspension_at),
            "termination_at": _iso_or_none(projection.termination_at),
            "rules": {
                "notices_before_suspension": NOTICES_BEFORE_SUSPENSION,
                "notices_before_termination": NOTICES_BEFORE_TERMINATION,
            },
        }
    )


@route(blueprint, "/v1/bandwidth", ["GET"], query=BANDWIDTH_QUERY)
def get_bandwidth() -> object:
    account = current_account(blueprint.current_request)
    month = request_query().get("month") or month_key(now())
    if not MONTH_PATTERN.match(month):
        raise InvalidRequest("month must be YYYY-MM, for example 2026-12", field="month")

    price = format_micros(round_half_up(settings().bandwidth_micros_per_gib), min_decimals=3)
    return json_response(
        {
            "month": month,
            "currency": settings().currency,
            "overage_price_per_gib": price,
            "regions": bandwidth_summary(account, month),
        }
    )


def _iso_or_none(moment: datetime | None) -> str | None:
    return iso(moment) if moment is not None else None
