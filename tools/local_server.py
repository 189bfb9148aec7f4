"""The app served over HTTP on 127.0.0.1 for `make run` and the browser tests, by chalice
local's own server. It responds as the deployed API Gateway does with Lobster's gateway
responses: a path no route matches is a 404 in the app's error format, not chalice's
`{"message": "Missing Authentication Token"}`.

    python -m tools.local_server --port 8000

Unlike `chalice local --stage local`, it takes every setting from the environment it starts in.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalDevServer, LocalGatewayException

from tools.infra import GATEWAY_RESPONSES

HOST = "127.0.0.1"
DEFAULT_PORT = 8000


class RequestHandler(ChaliceRequestHandler):
    """chalice local's handler, which passes every method on to the app and rewrites the
    gateway's own errors into the error format. Python's HTTP server would return 501 itself
    for a method without a `do_` handler, such as TRACE."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)

    def _send_error_response(self, error: LocalGatewayException) -> None:
        status, code, message = GATEWAY_RESPONSES["MISSING_AUTHENTICATION_TOKEN"]
        body = json.dumps({"error": {"code": code, "message": message, "field": None}}).encode()
        headers = {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}
        self._send_http_response(int(status or error.CODE), headers, body)


def create_server(app: Any, port: int, *, quiet: bool = False) -> LocalDevServer:
    """Build the server for `app` on 127.0.0.1:`port` (0 picks a free port)."""
    handler = QuietRequestHandler if quiet else RequestHandler
    return LocalDevServer(app, Config.create(), HOST, port, handler_cls=handler)


class QuietRequestHandler(RequestHandler):
    """The same handler without a log line per request, for tests."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port on {HOST} (default {DEFAULT_PORT})")
    arguments = parser.parse_args(argv)

    from app import app

    create_server(app, arguments.port).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
