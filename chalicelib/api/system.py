"""Health check: answers without touching the database, for load balancers and uptime checks."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import json_response, route
from chalicelib.clock import iso, now

blueprint = Blueprint(__name__)


@route(blueprint, "/health", ["GET"])
def health() -> object:
    return json_response({"status": "ok", "time": iso(now())})
