"""The web panel's files: the page at `/` and its scripts and styles under `/assets/`.

Only files present in chalicelib/panel/static when the function starts can be served, so no
request path reaches the file system. Every response carries a Content Security Policy that
allows scripts and styles from this origin only, with no inline script.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from chalice import Blueprint, Response

from chalicelib.api.http import json_response
from chalicelib.errors import NotFound

blueprint = Blueprint(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "panel" / "static"
INDEX_FILE = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PANEL_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    # Revalidate on every load, so a deploy reaches every open browser at its next page load.
    "Cache-Control": "no-cache",
}


@lru_cache(maxsize=1)
def served_files() -> frozenset[str]:
    """Names of the files the panel serves: regular files of the static folder with a known type."""
    if not STATIC_DIR.is_dir():
        return frozenset()
    return frozenset(path.name for path in STATIC_DIR.iterdir() if path.is_file() and path.suffix in CONTENT_TYPES)


@lru_cache(maxsize=64)
def _read(name: str) -> str:
    return (STATIC_DIR / name).read_text(encoding="utf-8")


def file_response(name: str) -> Response:
    """Return a served file, or a 404 in the API's error format."""
    if name not in served_files():
        error = NotFound(f"no panel file named {name!r}", field="name")
        return json_response(error.to_body(), error.status, {**PANEL_HEADERS, "Cache-Control": "no-store"})
    content_type = CONTENT_TYPES[Path(name).suffix]
    return Response(body=_read(name), status_code=200, headers={**PANEL_HEADERS, "Content-Type": content_type})


@blueprint.route("/", methods=["GET"])
def panel_page() -> Response:
    return file_response(INDEX_FILE)


@blueprint.route("/assets/{name}", methods=["GET"])
def panel_asset(name: str) -> Response:
    return file_response(name)
