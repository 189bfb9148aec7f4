"""Serve the Chalice app for the browser tests: `python -m tests.e2e.serve PORT` runs
tools.local_server with the settings of the environment it starts in."""

from __future__ import annotations

import sys

from tools import local_server

if __name__ == "__main__":
    sys.exit(local_server.main(["--port", sys.argv[1]]))
