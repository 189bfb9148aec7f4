"""Customer payment routes: start a payment with an enabled gateway, capture an approved
PayPal order, and list the customer's own payments.
"""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import current_account, json_response, route
from chalicelib.api.schema import Field, Schema, query_param
from chalicelib.errors import InvalidRequest
from chalicelib.money import InvalidAmount, parse_micros
from chalicelib.payments.service import DEFAULT_LIST_LIMIT, capture_payment, list_payments, start_payment

blueprint = Blueprint(__name__)

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


@route(blueprint, "/v1/payments", ["POST"])
def create_payment() -> object:
    request = blueprint.current_request
    account = current_account(request)
    body = START_PAYMENT.parse_body(request.raw_body)
    try:
        amount = parse_micros(body["amount"])
    except InvalidAmount as error:
        raise InvalidRequest(str(error), field="amount") from None

    result = start_payment(account, body["gateway"], amount, body.get("return_url"))
    return json_response(result, 201)


@route(blueprint, "/v1/payments", ["GET"])
def get_payments() -> object:
    request = blueprint.current_request
    account = current_account(request)
    limit_text = query_param(request.query_params, "limit") or str(DEFAULT_LIST_LIMIT)
    if not limit_text.isdigit():
        raise InvalidRequest("limit must be a whole number", field="limit")

    page = list_payments(account.account_id, int(limit_text), query_param(request.query_params, "cursor"))
    return json_response(page)


@route(blueprint, "/v1/payments/{gateway}/{checkout_id}/capture", ["POST"])
def capture(gateway: str, checkout_id: str) -> object:
    account = current_account(blueprint.current_request)
    return json_response(capture_payment(account, gateway, checkout_id))
