"""A fake Coinbase Commerce API: charges, their listing, and signed webhook deliveries.

Requests need the X-CC-Api-Key the fake was built with, and charge bodies are checked
the way the real API checks them. Webhooks are serialized once, with indentation and
key order as Coinbase sends them, and the signature is taken over exactly those bytes.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from chalicelib.payments.base import CallbackRequest
from tests.fakes.server import FakeProvider, Request, Response

API_VERSION = "2018-03-22"
CHARGE_LIFETIME = timedelta(hours=1)
DEFAULT_PAGE_LIMIT = 25
MAX_PAGE_LIMIT = 100
MAX_NAME_LENGTH = 100
MAX_DESCRIPTION_LENGTH = 200
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8

_DECIMAL = re.compile(r"^\d+(\.\d+)?$")
_CURRENCY = re.compile(r"^[A-Z]{3,5}$")


class FakeCoinbase(FakeProvider):
    """Coinbase Commerce's charges API in memory, plus helpers that play the payer."""

    def __init__(self, api_key: str = "cc-test-key", webhook_secret: str = "cc-test-webhook-secret") -> None:
        super().__init__()
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.charges: dict[str, dict[str, Any]] = {}  # by code, in creation order
        self._charges_lock = threading.Lock()
        self.route("POST", "/charges", self._create_charge)
        self.route("GET", "/charges", self._list_charges)
        self.route("GET", "/charges/{code_or_id}", self._get_charge)

    def dispatch(self, request: Request) -> Response:
        version = request.headers.get("x-cc-version")
        if request.headers.get("x-cc-api-key") != self.api_key:
            rejection = _error(401, "authentication_error", "No such API key.")
        elif version is not None and version != API_VERSION:
            rejection = _error(400, "invalid_request", f"Unsupported X-CC-Version {version!r}")
        else:
            return super().dispatch(request)

        with self._lock:
            self.requests.append(request)
        return rejection

    # API routes.

    def _create_charge(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _error(400, "invalid_request", "Content-Type must be application/json")
        try:
            body = request.json()
        except ValueError:
            return _error(400, "invalid_request", "Request body is not valid JSON")

        problem = _charge_body_problem(body)
        if problem:
            return _error(400, "validation_error", problem)

        charge = self._new_charge(body)
        return Response.json({"data": charge, "warnings": []}, status=201)

    def _list_charges(self, request: Request) -> Response:
        try:
            limit = int(request.arg("limit", str(DEFAULT_PAGE_LIMIT)) or DEFAULT_PAGE_LIMIT)
        except ValueError:
            return _error(400, "invalid_request", "limit must be an integer")
        if not 1 <= limit <= MAX_PAGE_LIMIT:
            return _error(400, "invalid_request", f"limit must be between 1 and {MAX_PAGE_LIMIT}")
        order = request.arg("order", "desc")
        if order not in ("asc", "desc"):
            return _error(400, "invalid_request", "order must be asc or desc")

        with self._charges_lock:
            charges = sorted(self.charges.values(), key=lambda c: c["created_at"], reverse=order == "desc")
        starting_after = request.arg("starting_after")
        if starting_after:
            ids = [charge["id"] for charge in charges]
            if starting_after not in ids:
                return _error(404, "not_found", f"No charge with id {starting_after}")
            charges = charges[ids.index(starting_after) + 1 :]

        page = charges[:limit]
        return Response.json(
            {"pagination": _pagination(page, len(charges), limit, order), "data": page, "warnings": []}
        )

    def _get_charge(self, request: Request) -> Response:
        charge = self._find(request.params["code_or_id"])
        if charge is None:
            return _error(404, "not_found", "Not found")
        return Response.json({"data": charge, "warnings": []})

    # Helpers that act as the payer or as Coinbase.

    def create_charge(self, amount: str, currency: str = "USD", metadata: dict[str, str] | None = None) -> str:
        """Create a fixed-price charge without an API request, for bulk setup; return its code."""
        body = {"name": "Account credit", "pricing_type": "fixed_price", "metadata": metadata or {}}
        body["local_price"] = {"amount": amount, "currency": currency}
        return self._new_charge(body)["code"]

    def add_payment(
        self,
        code: str,
        amount: str,
        *,
        currency: str | None = None,
        status: str = "CONFIRMED",
        network: str = "ethereum",
        crypto_amount: str = "0.0100000",
        crypto_currency: str = "ETH",
    ) -> dict[str, Any]:
        """Record an on-chain payment of `amount` (local currency, decimal text) on a charge."""
        charge = self.charges[code]
        payment = {
            "network": network,
            "transaction_id": "0x" + secrets.token_hex(32),
            "status": status,
            "detected_at": _iso(_now()),
            "value": {
                "local": {"amount": amount, "currency": currency or charge["pricing"]["local"]["currency"]},
                "crypto": {"amount": crypto_amount, "currency": crypto_currency},
            },
            "block": {"height": 100, "hash": "0x" + secrets.token_hex(32), "confirmations": 12},
        }
        charge["payments"].append(payment)
        return payment

    def set_status(self, code: str, status: str, context: str | None = None) -> None:
        """Append a timeline entry such as COMPLETED, EXPIRED or UNRESOLVED (with a context)."""
        entry: dict[str, Any] = {"time": _iso(_now()), "status": status}
        if context:
            entry["context"] = context
        self.charges[code]["timeline"].append(entry)

    def backdate(self, code: str, created_at: datetime) -> None:
        self.charges[code]["created_at"] = _iso(created_at)

    def webhook(self, event_type: str, code: str, *, received_at: datetime | None = None) -> CallbackRequest:
        """Build the signed delivery of `event_type` for a charge, as the gateway receives it."""
        payload = {
            "attempt_number": 1,
            "event": {
                "id": str(uuid.uuid4()),
                "resource": "event",
                "type": event_type,
                "api_version": API_VERSION,
                "created_at": _iso(_now()),
                "data": copy.deepcopy(self.charges[code]),
            },
            "id": str(uuid.uuid4()),
            "scheduled_for": _iso(_now()),
        }
        return self.deliver(json.dumps(payload, indent=2).encode(), received_at=received_at)

    def deliver(self, raw_body: bytes, *, received_at: datetime | None = None) -> CallbackRequest:
        """Sign `raw_body` with the shared secret and wrap it as a received callback."""
        headers = {
            "content-type": "application/json",
            "x-cc-webhook-signature": self.sign(raw_body),
        }
        return CallbackRequest(headers=headers, raw_body=raw_body, query={}, received_at=received_at or _now())

    def sign(self, raw_body: bytes) -> str:
        return hmac.new(self.webhook_secret.encode(), raw_body, hashlib.sha256).hexdigest()

    # Internals.

    def _new_charge(self, body: dict[str, Any]) -> dict[str, Any]:
        created = _now()
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        local = body.get("local_price")
        charge = {
            "id": str(uuid.uuid4()),
            "resource": "charge",
            "code": code,
            "name": body["name"],
            "description": body.get("description", ""),
            "hosted_url": f"https://commerce.coinbase.com/pay/{code}",
            "created_at": _iso(created),
            "expires_at": _iso(created + CHARGE_LIFETIME),
            "timeline": [{"time": _iso(created), "status": "NEW"}],
            "metadata": body.get("metadata") or {},
            "pricing_type": body["pricing_type"],
            "pricing": {"local": dict(local)} if local else {},
            "payments": [],
            "redirects": {
                "success_url": body.get("redirect_url", ""),
                "cancel_url": body.get("cancel_url", ""),
                "will_redirect_after_success": bool(body.get("redirect_url")),
            },
        }
        with self._charges_lock:
            self.charges[code] = charge
        return charge

    def _find(self, code_or_id: str) -> dict[str, Any] | None:
        with self._charges_lock:
            for charge in self.charges.values():
                if code_or_id in (charge["code"], charge["id"]):
                    return charge
        return None


def _charge_body_problem(body: Any) -> str | None:
    """Return why Coinbase would reject this charge body, or None when it is valid."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    name = body.get("name")
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
        return f"name is required and must be at most {MAX_NAME_LENGTH} characters"
    description = body.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH:
        return f"description must be at most {MAX_DESCRIPTION_LENGTH} characters"
    if body.get("pricing_type") not in ("fixed_price", "no_price"):
        return "pricing_type must be fixed_price or no_price"
    if body["pricing_type"] == "fixed_price":
        problem = _local_price_problem(body.get("local_price"))
        if problem:
            return problem
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        return "metadata must be an object of strings"
    for field in ("redirect_url", "cancel_url"):
        if field in body and urlsplit(str(body[field])).scheme not in ("http", "https"):
            return f"{field} must be an http or https URL"
    return None


def _local_price_problem(local_price: Any) -> str | None:
    if not isinstance(local_price, dict):
        return "local_price is required for fixed_price charges"
    amount = local_price.get("amount")
    if not isinstance(amount, str) or not _DECIMAL.match(amount):
        return 'local_price.amount must be a decimal string such as "20.00"'
    if not any(digit not in "0." for digit in amount):
        return "local_price.amount must be greater than zero"
    if not isinstance(local_price.get("currency"), str) or not _CURRENCY.match(local_price["currency"]):
        return "local_price.currency must be an upper-case currency code"
    return None


def _pagination(page: list[dict[str, Any]], remaining: int, limit: int, order: str) -> dict[str, Any]:
    more = remaining > len(page)
    next_uri = None
    if more and page:
        next_uri = "/charges?" + urlencode({"limit": limit, "order": order, "starting_after": page[-1]["id"]})
    return {
        "order": order,
        "starting_after": None,
        "ending_before": None,
        "total": remaining,
        "yielded": len(page),
        "limit": limit,
        "previous_uri": None,
        "next_uri": next_uri,
        "cursor_range": [page[0]["id"], page[-1]["id"]] if page else [],
    }


def _error(status: int, error_type: str, message: str) -> Response:
    return Response.json({"error": {"type": error_type, "message": message}}, status)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
