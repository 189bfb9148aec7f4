"""Calling the API as API Gateway does, from a chosen client address.

`chalice.test.Client` and `chalice local` put 127.0.0.1 in every request's
`requestContext.identity.sourceIp` (chalice 1.34, `LambdaEventConverter.LOCAL_SOURCE_IP`).
`ApiCaller` drives the same Chalice `LocalGateway` but sets that address per call, so tests
can send requests from other IPv4 and IPv6 addresses.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from chalice.config import Config
from chalice.local import LocalGateway, LocalGatewayException

from chalicelib.models import ALL_MODELS, REQUEST_BOOKKEEPING_MODELS
from chalicelib.notify.sender import outbox

PASSWORD = "correct horse battery"
DEFAULT_ADDRESS = "203.0.113.7"


@dataclass
class Reply:
    status: int
    body: Any
    # A header sent several times, such as Set-Cookie, is the list of its values.
    headers: dict[str, Any]

    @property
    def error_field(self) -> str | None:
        return self.body["error"]["field"]


class ApiCaller:
    def __init__(self, app: Any) -> None:
        self.gateway = LocalGateway(app, Config.create())

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        source_ip: str = DEFAULT_ADDRESS,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        request_headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            request_headers["Authorization"] = f"Bearer {token}"
        payload = raw
        if payload is None:
            payload = json.dumps(body).encode() if body is not None else b""
        self.gateway.event_converter.LOCAL_SOURCE_IP = source_ip
        try:
            response = self.gateway.handle_request(method=method, path=path, headers=request_headers, body=payload)
        except LocalGatewayException as error:
            return Reply(error.CODE, json.loads(error.body or b"null"), dict(error.headers))
        raw_body = response.get("body") or ""
        headers = {**response["headers"], **response.get("multiValueHeaders", {})}
        return Reply(response["statusCode"], json.loads(raw_body) if raw_body else None, headers)

    def sign_up(self, email: str, password: str = PASSWORD, source_ip: str = DEFAULT_ADDRESS) -> str:
        """Sign up and return the account id; the address stays unverified."""
        reply = self.call("POST", "/v1/auth/signup", {"email": email, "password": password}, source_ip=source_ip)
        assert reply.status == 201, reply.body
        return reply.body["account_id"]

    def log_in(self, email: str, password: str = PASSWORD, source_ip: str = DEFAULT_ADDRESS) -> str:
        reply = self.call("POST", "/v1/auth/login", {"email": email, "password": password}, source_ip=source_ip)
        assert reply.status == 200, reply.body
        return reply.body["token"]

    def verify(self, email: str) -> None:
        reply = self.call("POST", "/v1/auth/verify", {"token": mailed_token(email, "verify_email")})
        assert reply.status == 200, reply.body

    def verified_session(self, email: str, password: str = PASSWORD) -> str:
        """Sign up, verify the address with the mailed token, and return a session token."""
        self.sign_up(email, password)
        self.verify(email)
        return self.log_in(email, password)

    def add_credit(self, token: str, amount: str = "20.00") -> None:
        reply = self.call("POST", "/v1/payments", {"gateway": "demo", "amount": amount}, token)
        assert reply.status == 201, reply.body


def mailed_token(email: str, template: str) -> str:
    """Return the token in the newest `template` e-mail sent to `email` in the test stage."""
    notice = next(notice for notice in reversed(outbox) if notice.to == email and notice.template == template)
    return token_in(notice.body)


def token_in(body: str) -> str:
    """Return the token printed after "token:" in a notice body, whatever its line endings."""
    match = re.search(r"token:\s+(\S+)", body)
    assert match, body
    return match.group(1)


def mails_to(email: str, template: str) -> int:
    return sum(1 for notice in outbox if notice.to == email and notice.template == template)


def data_item_count() -> int:
    """Count customer data items; rate-limit counters and Idempotency-Key records are left out."""
    return sum(1 for model in ALL_MODELS if model not in REQUEST_BOOKKEEPING_MODELS for _ in model.scan(consistent_read=True))


VM_BODY = {"name": "web1", "region": "demo", "plan": "s1", "image": "debian-12"}
