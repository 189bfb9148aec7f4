"""Serve the Chalice app over HTTP on 127.0.0.1 for the browser tests, with the settings of
the environment it is started in (`chalice local --stage local` would impose the stage's
fixed DynamoDB port and table prefix instead).

    python -m tests.e2e.serve PORT
"""

from __future__ import annotations

import sys

from chalice.config import Config
from chalice.local import create_local_server

HOST = "127.0.0.1"


def main(argv: list[str]) -> int:
    from app import app

    server = create_local_server(app, Config.create(), HOST, int(argv[0]))
    print(f"serving on http://{HOST}:{argv[0]}/", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
