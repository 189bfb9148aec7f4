"""The local HTTP server of `make run` and the browser tests responds as API Gateway does with
Lobster's gateway responses: an unknown path is a 404 in the error format."""

from __future__ import annotations

import pytest
import requests

from app import app
from tests.local_server import serve


@pytest.mark.parametrize(("method", "path"), [("GET", "/nonexistent"), ("POST", "/v1/nothing/here"), ("GET", "/index.html")])
def test_unknown_path_is_a_json_404(method: str, path: str) -> None:
    with serve(app) as url:
        reply = requests.request(method, url + path, timeout=10)

    assert reply.status_code == 404
    assert reply.headers["Content-Type"] == "application/json"
    assert set(reply.json()["error"]) == {"code", "message", "field"}
    assert reply.json()["error"]["code"] == "not_found"


def test_trace_reaches_the_app_and_gets_405() -> None:
    with serve(app) as url:
        reply = requests.request("TRACE", url + "/health", timeout=10)

    assert reply.status_code == 405
    assert "error" in reply.json()
