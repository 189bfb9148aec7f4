"""Payment gateway callbacks: POST /v1/webhooks/{gateway}, PayPal IPN included.

The raw body reaches the gateway's verify_callback untouched. The response is a 2xx only
after apply_event has stored the effect of every event the callback carries. Any failure
before that is a 4xx (rejected, nothing stored) or a 5xx (the gateway delivers again).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chalice import Blueprint, Response

from chalicelib import clock
from chalicelib.api.http import INTERNAL_ERROR_BODY, error_response, json_response
from chalicelib.errors import LobsterError, NotFound, WebhookRejected
from chalicelib.log import logger
from chalicelib.payments.base import CallbackRequest
from chalicelib.payments.credit import apply_event
from chalicelib.payments.registry import create_gateway, gateway_spec

blueprint = Blueprint(__name__)

# Every media type reaches the view, because each gateway checks the Content-Type it expects
# and rejects others in the JSON error format, where Chalice would return its own 415 body.
WEBHOOK_CONTENT_TYPES = ["*/*"]


def _webhook_route(path: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Register a POST view that returns every failure in the API's JSON error format."""

    def register(view: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(view)
        def wrapped(**params: Any) -> Response:
            try:
                return view(**params)
            except LobsterError as error:
                if error.status >= 500:
                    logger.error("webhook_failed", extra={**params, "code": error.code, "error": error.message})
                return error_response(error)
            except Exception:  # noqa: BLE001 - an unexpected failure is a 500, so the gateway delivers again
                logger.exception("webhook_crashed", extra=params)
                return json_response(INTERNAL_ERROR_BODY, 500)

        blueprint.route(path, methods=["POST"], content_types=WEBHOOK_CONTENT_TYPES)(wrapped)
        return view

    return register


@_webhook_route("/v1/webhooks/{gateway}")
def receive_callback(gateway: str) -> Response:
    request = blueprint.current_request
    callback = CallbackRequest(
        headers={name.lower(): value for name, value in request.headers.items()},
        raw_body=_raw_bytes(request.raw_body),
        query=dict(request.query_params or {}),
        received_at=clock.now(),
    )
    return json_response(handle_callback(gateway, callback))


def handle_callback(gateway_name: str, callback: CallbackRequest) -> dict[str, Any]:
    """Verify a callback and apply its events; return the response body once every effect is stored."""
    if not gateway_spec(gateway_name).accepts_callbacks:
        raise NotFound(f"payment gateway {gateway_name!r} takes no callbacks")
    gateway = create_gateway(gateway_name)

    try:
        events = gateway.verify_callback(callback)
    except WebhookRejected as error:
        logger.warning(
            "callback_rejected",
            extra={
                "gateway": gateway_name,
                "code": error.code,
                "error": error.message,
                "body_bytes": len(callback.raw_body),
            },
        )
        raise

    answers = []
    for event in events:
        result = apply_event(event)
        answers.append(
            {"payment_id": event.payment_id, "transition": event.transition.value, "outcome": result.outcome.value}
        )
    logger.info("webhook_processed", extra={"gateway": gateway_name, "events": answers})
    return {"received": True, "events": answers}


def _raw_bytes(body: str | bytes | None) -> bytes:
    # NOTE: API Gateway passes a text body (JSON, form data) to Lambda as a UTF-8 string, so
    # only bodies that are valid UTF-8 arrive byte for byte. Gateway JSON is UTF-8 and IPN
    # bodies are percent-encoded ASCII; other bytes would fail signature checks, not pass them.
    if body is None:
        return b""
    return body if isinstance(body, bytes) else body.encode("utf-8")
