"""Outbound HTTP with timeouts, bounded retries and provider errors turned into
LobsterErrors.

Only safe requests (GET, HEAD, OPTIONS, and requests the caller marks idempotent) are
retried, with exponential backoff; a 429 is retried for any method because the provider
did not act on it. An error raised for an HTTP response carries its status in
`status_code`. Headers and bodies are never logged, since they carry credentials.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from chalicelib.errors import BackendError, BackendUnavailable, NotFound
from chalicelib.log import logger

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 30
MAX_ATTEMPTS = 4
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_ERROR_TEXT = 300


@dataclass
class HttpClient:
    """A small wrapper around one `requests.Session` for one provider.

    `provider` names the provider in messages; `describe_error` extracts the provider's
    own error text from a failed response body.
    """

    provider: str
    base_url: str
    default_headers: Mapping[str, str] | None = None
    timeout: tuple[float, float] = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)
    describe_error: Callable[[requests.Response], str] | None = None
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        self.session = requests.Session()
        if self.default_headers:
            self.session.headers.update(self.default_headers)

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool = False,
        not_found_ok: bool = False,
        **kwargs: Any,
    ) -> requests.Response | None:
        """Send a request and return the response, retrying where it is safe.

        Returns None for a 404 when `not_found_ok` is set; raises NotFound for other
        404s, BackendUnavailable for timeouts, 429 and 5xx, BackendError for other
        failures. Errors raised for a response carry its HTTP status in `status_code`.
        """
        method = method.upper()
        url = path if path.startswith(("http://", "https://")) else self.base_url.rstrip("/") + "/" + path.lstrip("/")
        retry_safe = idempotent or method in SAFE_METHODS
        kwargs.setdefault("timeout", self.timeout)

        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.Timeout as exc:
                failure: Exception = BackendUnavailable(f"{self.provider} timed out; try again shortly")
                cause: Exception = exc
            except requests.ConnectionError as exc:
                failure, cause = BackendUnavailable(f"{self.provider} could not be reached"), exc
            else:
                if response.status_code < 400:
                    return response
                if response.status_code == 404 and not_found_ok:
                    return None
                failure, cause = self._error_for(response), RuntimeError(f"HTTP {response.status_code}")
                if not (response.status_code == 429 or (retry_safe and response.status_code >= 500)):
                    self._log_failure(method, url, attempt, cause, retrying=False)
                    raise failure
                if response.status_code == 429:
                    retry_safe = True

            if not retry_safe or attempt == MAX_ATTEMPTS:
                self._log_failure(method, url, attempt, cause, retrying=False)
                raise failure from cause
            self._log_failure(method, url, attempt, cause, retrying=True)
            self.sleep(min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)))

        raise AssertionError("unreachable")

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return its decoded JSON body (None for an empty body)."""
        response = self.request(method, path, **kwargs)
        if response is None or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(f"{self.provider} returned a response that is not JSON") from exc

    def _error_for(self, response: requests.Response) -> Exception:
        detail = self._provider_message(response)
        status = response.status_code
        if status == 404:
            return NotFound(f"{self.provider}: resource not found{detail}", status_code=status)
        if status == 429:
            return BackendUnavailable(
                f"{self.provider} is rate limiting requests; try again shortly", status_code=status
            )
        if status >= 500:
            return BackendUnavailable(f"{self.provider} failed with HTTP {status}{detail}", status_code=status)
        if status in (401, 403):
            # Regions and payment gateways share this client, so the message names no caller.
            return BackendError(f"{self.provider} rejected the credentials (HTTP {status})", status_code=status)
        return BackendError(f"{self.provider} rejected the request (HTTP {status}){detail}", status_code=status)

    def _provider_message(self, response: requests.Response) -> str:
        if self.describe_error is None:
            return ""
        try:
            text = self.describe_error(response)
        except Exception:  # noqa: BLE001 - a malformed error body must not hide the status
            return ""
        return f": {text[:MAX_ERROR_TEXT]}" if text else ""

    def _log_failure(self, method: str, url: str, attempt: int, cause: Exception, *, retrying: bool) -> None:
        logger.warning(
            "provider_request_failed",
            extra={
                "provider": self.provider,
                "method": method,
                "url": url.split("?", 1)[0],
                "attempt": attempt,
                "retrying": retrying,
                "error": str(cause),
            },
        )
