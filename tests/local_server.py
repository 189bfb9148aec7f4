"""The app served over HTTP on 127.0.0.1 by `chalice local`'s own server, in a thread of the
test process, so the served app shares the test's DynamoDB Local tables and clock.

The server reports every client as 127.0.0.1 (chalice 1.34, `LambdaEventConverter.LOCAL_SOURCE_IP`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalice.config import Config
from chalice.local import ChaliceRequestHandler, LocalDevServer

HOST = "127.0.0.1"


class RequestHandler(ChaliceRequestHandler):
    """chalice local's handler, passing every method on to the app, where Python's HTTP
    server would return 501 itself for methods it has no `do_` handler for (TRACE, QUERY),
    and logging no line per request."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it
        return None


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve `app` on a free port of 127.0.0.1 until the block ends; yield its base URL."""
    # Port 0 lets the kernel pick a free port. LocalDevServer is built directly, not through
    # chalice.local.create_local_server, which would change the class of the shared app.
    server = LocalDevServer(app, Config.create(), HOST, 0, handler_cls=RequestHandler)
    port = server.server.server_address[1]
    thread = threading.Thread(target=server.server.serve_forever, name="chalice-local", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=5)
