"""Customer payment routes: list the enabled gateways, start a payment with one, capture an
approved PayPal order, and list the customer's own payments.
"""

from __future__ import annotations

import importlib

from chalice import Blueprint

from chalicelib.api.http import current_account, json_response, request_body, request_query, route
from chalicelib.api.schema import Field, Schema
from chalicelib.config import settings
from chalicelib.errors import InvalidRequest
from chalicelib.money import InvalidAmount, money_json, parse_micros
from chalicelib.payments.registry import GATEWAYS, enabled_gateway_names
from chalicelib.payments.service import (
    DEFAULT_LIST_LIMIT,
    CapturesOrders,
    PaysAtCheckout,
    capture_payment,
    list_payments,
    start_payment,
)

blueprint = Blueprint(__name__)

# Names the panel shows for each gateway; a gateway missing here is shown by its id.
GATEWAY_DISPLAY_NAMES = {
    "paypal": "PayPal",
    "coinbase": "Coinbase Commerce",
    "stripe": "Stripe",
    "demo": "Demo credit (local only)",
}

START_PAYMENT = Schema(
    "StartPayment",
    (
        Field("gateway", max_length=32, description='Gateway name, for example "stripe"'),
        Field("amount", max_length=32, description='Decimal amount in the deployment currency, e.g. "20.00"'),
        Field(
            "return_url",
            required=False,
            max_length=2048,
            description="Absolute URL the gateway sends the customer back to; defaults to the gateway's configured return_url",
        ),
    ),
)
PAYMENT_PAGE = Schema(
    "PaymentPage",
    (
        Field("limit", required=False, max_length=8, description=f"Payments per page, a whole number; default {DEFAULT_LIST_LIMIT}"),
        Field("cursor", required=False, max_length=1024, description="next_cursor of the previous page"),
    ),
)


@route(blueprint, "/v1/payments", ["POST"], body=START_PAYMENT, status=201)
def create_payment() -> object:
    account = current_account(blueprint.current_request)
    body = request_body()
    try:
        amount = parse_micros(body["amount"])
    except InvalidAmount as error:
        raise InvalidRequest(str(error), field="amount") from None

    result = start_payment(account, body["gateway"], amount, body.get("return_url"))
    return json_response(result, 201)


@route(blueprint, "/v1/payments", ["GET"], query=PAYMENT_PAGE)
def get_payments() -> object:
    account = current_account(blueprint.current_request)
    query = request_query()
    limit_text = query.get("limit") or str(DEFAULT_LIST_LIMIT)
    if not limit_text.isdigit():
        raise InvalidRequest("limit must be a whole number", field="limit")

    page = list_payments(account.account_id, int(limit_text), query.get("cursor"))
    return json_response(page)


@route(blueprint, "/v1/payments/{gateway}/{checkout_id}/capture", ["POST"])
def capture(gateway: str, checkout_id: str) -> object:
    account = current_account(blueprint.current_request)
    return json_response(capture_payment(account, gateway, checkout_id))



@route(blueprint, "/v1/payments/gateways", ["GET"])
def list_gateways() -> object:
    """List the enabled payment gateways with the amount bounds of a payment."""
    current_account(blueprint.current_request)
    config = settings()
    gateways = [
        {
            "id": name,
            "name": GATEWAY_DISPLAY_NAMES.get(name, name),
            "currency": config.currency,
            "min_amount": money_json(config.payment_min_micros),
            "max_amount": money_json(config.payment_max_micros),
            **_gateway_flow(name),
        }
        for name in enabled_gateway_names()
    ]
    return json_response({"gateways": gateways})


def _gateway_flow(name: str) -> dict[str, bool]:
    """Tell the panel whether a checkout is paid at once and whether its return needs a capture.

    The gateway's module is imported here, on this route only, so a cold start still loads none.
    """
    module_name, class_name = GATEWAYS[name].target.split(":")
    gateway_class = getattr(importlib.import_module(module_name), class_name)
    return {
        "pays_at_checkout": issubclass(gateway_class, PaysAtCheckout),
        "capture_on_return": issubclass(gateway_class, CapturesOrders),
    }
