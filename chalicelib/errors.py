"""The error tree. Every failure a caller can act on is a LobsterError subclass named by
its outcome. The API edge turns it into `{"error": {"code", "message", "field"}}` with
the status it carries. Anything else is a 500 that reveals no internals.
"""

from __future__ import annotations


class LobsterError(Exception):
    """Root of every expected failure.

    `status` is the HTTP status Lobster responds with. `status_code` is the HTTP status of
    the provider or gateway response behind the error, or None when there was none.
    """

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status_code = status_code

    def to_body(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


class InvalidRequest(LobsterError):
    status = 400
    code = "invalid_request"


class Unauthenticated(LobsterError):
    status = 401
    code = "unauthenticated"


class Forbidden(LobsterError):
    status = 403
    code = "forbidden"


class NotFound(LobsterError):
    status = 404
    code = "not_found"


class Conflict(LobsterError):
    status = 409
    code = "conflict"


class InsufficientCredit(LobsterError):
    status = 402
    code = "insufficient_credit"


class LimitReached(LobsterError):
    status = 409
    code = "limit_reached"


class VmSuspended(LobsterError):
    status = 409
    code = "vm_suspended"


class NotSupported(LobsterError):
    status = 400
    code = "not_supported"


class RateLimited(LobsterError):
    status = 429
    code = "rate_limited"


class BackendError(LobsterError):
    """The provider behind a region failed; the message is safe to show to users."""

    status = 502
    code = "backend_error"


class BackendUnavailable(BackendError):
    """The provider timed out or returned a server error."""

    status = 503
    code = "backend_unavailable"


class WebhookRejected(LobsterError):
    """A payment callback failed verification; nothing was credited."""

    status = 400
    code = "webhook_rejected"


class WebhookSignatureInvalid(WebhookRejected):
    code = "webhook_signature_invalid"
