"""The app served over HTTP on 127.0.0.1 by `chalice local`'s own server, in a thread of the
test process, so the served app shares the test's DynamoDB Local tables and clock.

The server reports every client as 127.0.0.1 (chalice 1.34, `LambdaEventConverter.LOCAL_SOURCE_IP`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tools.local_server import HOST, create_server


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve `app` on a free port of 127.0.0.1 until the block ends; yield its base URL."""
    # Port 0 lets the kernel pick a free port. The server is built directly, not through
    # chalice.local.create_local_server, which would change the class of the shared app.
    server = create_server(app, 0, quiet=True)
    port = server.server.server_address[1]
    thread = threading.Thread(target=server.server.serve_forever, name="chalice-local", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(timeout=5)
