"""Customer payment routes: start a payment with one of the enabled gateways."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import current_account, json_response, route
from chalicelib.api.schema import Field, Schema
from chalicelib.errors import InvalidRequest
from chalicelib.money import InvalidAmount, parse_micros
from chalicelib.payments.service import start_payment

blueprint = Blueprint(__name__)

START_PAYMENT = Schema(
    "StartPayment",
    (
        Field("gateway", max_length=32, description="Gateway name, for example \"demo\""),
        Field("amount", max_length=32, description="Decimal amount in the deployment currency, e.g. \"20.00\""),
        Field("return_url", required=False, max_length=2048, description="Where the gateway sends the customer back"),
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

    result = start_payment(account, body["gateway"], amount, body.get("return_url") or "/")
    return json_response(result, 201)
