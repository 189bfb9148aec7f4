"""A small threaded HTTP server on 127.0.0.1 that test fakes of provider APIs build on.

A fake subclasses `FakeProvider`, registers routes with `route(method, pattern)` and
keeps its state in memory. Tests can make the next requests fail or hang, optionally
only requests with a given method and path, to exercise error handling and timeouts.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        merged = {"Content-Type": "application/json"}
        merged.update(headers or {})
        return cls(status, json.dumps(payload).encode(), merged)

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain") -> Response:
        return cls(status, text.encode(), {"Content-Type": content_type})


Handler = Callable[[Request], Response]

HOST = "127.0.0.1"


@dataclass(frozen=True)
class _Injected:
    """A failure waiting for the next request that matches `method` and `path`.

    `outcome` is the response to send instead of handling the request, or a delay in
    seconds before handling it. `method` None matches every method; `path` is a regular
    expression for the whole path, None matches every path.
    """

    outcome: Response | float
    method: str | None = None
    path: str | None = None

    def matches(self, request: Request) -> bool:
        if self.method is not None and request.method != self.method:
            return False
        return self.path is None or re.fullmatch(self.path, request.path) is not None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        # A client that gave up (a timeout test) closes its socket before the response is
        # written; that is expected, so only other errors are printed.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class FakeProvider:
    """Base of every fake provider: routing, failure injection, a request log."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._failures: list[_Injected] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # Routing.

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Register `handler` for `method` and a path pattern with {name} placeholders."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self._routes.append((method.upper(), re.compile(f"^{regex}$"), handler))

    def dispatch(self, request: Request) -> Response:
        with self._lock:
            injected = self._take_failure(request)
            self.requests.append(request)
        if isinstance(injected, float):
            time.sleep(injected)
        elif injected is not None:
            return injected

        for method, regex, handler in self._routes:
            match = regex.match(request.path)
            if match and method == request.method:
                request.params = match.groupdict()
                return handler(request)
        return self.not_found(request)

    def not_found(self, request: Request) -> Response:
        return Response.json({"error": f"no route for {request.method} {request.path}"}, 404)

    # Failure injection.

    def fail_next(
        self,
        status: int = 500,
        body: bytes = b"internal error",
        count: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Respond to the next `count` matching requests with `status` instead of handling them.

        `method` and `path` (a regular expression for the whole path) narrow which
        requests match; other requests are handled as usual.
        """
        with self._lock:
            self._failures.extend(_Injected(Response(status, body), _upper(method), path) for _ in range(count))

    def hang_next(self, seconds: float, count: int = 1, *, method: str | None = None, path: str | None = None) -> None:
        """Delay the next `count` matching requests by `seconds` before handling them."""
        with self._lock:
            self._failures.extend(_Injected(float(seconds), _upper(method), path) for _ in range(count))

    def _take_failure(self, request: Request) -> Response | float | None:
        """Remove and return the oldest injected failure that matches `request`."""
        for index, injected in enumerate(self._failures):
            if injected.matches(request):
                del self._failures[index]
                return injected.outcome
        return None

    # Lifecycle.

    def start(self) -> str:
        """Start serving on a free port of 127.0.0.1 and return the base URL."""
        provider = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; without this, Nagle's algorithm and
            # delayed ACKs add about 40 ms to every request.
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={key.lower(): value for key, value in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                try:
                    response = provider.dispatch(request)
                except Exception as exc:  # noqa: BLE001 - a fake's bug becomes a visible 500
                    response = Response.text(f"fake provider error: {exc!r}", 500)
                self.send_response(response.status)
                for key, value in response.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = _Server((HOST, 0), _Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        port = self._server.server_address[1]
        return f"http://{HOST}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _upper(method: str | None) -> str | None:
    return method.upper() if method else None
