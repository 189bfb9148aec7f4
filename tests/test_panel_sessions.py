"""The web panel's browser sessions and files: HttpOnly cookies, the CSRF token every
cookie-authenticated write must echo, impersonation that hands the admin's session back,
and page files served with a Content Security Policy that allows no inline script.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from app import app
from chalicelib.accounts import cookies
from chalicelib.admin.users import create_admin
from chalicelib.api.panel import CONTENT_SECURITY_POLICY, STATIC_DIR
from chalicelib.models.auth import Session
from chalicelib.models.idempotency import IdempotencyRecord
from tests.api_calls import PASSWORD, ApiCaller, Reply

pytestmark = pytest.mark.usefixtures("demo_catalog")

ADMIN_EMAIL = "root@lobster.test"


@pytest.fixture
def api() -> ApiCaller:
    return ApiCaller(app)


def set_cookies(reply: Reply) -> dict[str, str]:
    """Return the Set-Cookie values of a reply by cookie name."""
    values = reply.headers.get("Set-Cookie") or reply.headers.get("set-cookie") or []
    values = values if isinstance(values, list) else [values]
    return {value.split("=", 1)[0]: value for value in values}


def cookie_value(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].split("=", 1)[1]


def browser_log_in(api: ApiCaller, email: str, password: str = PASSWORD) -> dict[str, str]:
    """Log in as the panel does and return the cookies a browser would keep."""
    reply = api.call("POST", "/v1/auth/login", {"email": email, "password": password, "session": "cookie"})
    assert reply.status == 200, reply.body
    return {name: cookie_value(value) for name, value in set_cookies(reply).items()}


def cookie_header(jar: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in jar.items() if value)}


def with_csrf(jar: dict[str, str]) -> dict[str, str]:
    return {**cookie_header(jar), "X-CSRF-Token": jar[cookies.CSRF_COOKIE]}


def test_cookie_log_in_sets_strict_cookies(api: ApiCaller) -> None:
    api.verified_session("ann@example.com")

    reply = api.call("POST", "/v1/auth/login", {"email": "ann@example.com", "password": PASSWORD, "session": "cookie"})

    assert reply.status == 200
    assert reply.body == {"token": None, "token_type": "Cookie"}
    session_cookie = set_cookies(reply)[cookies.SESSION_COOKIE]
    csrf_cookie = set_cookies(reply)[cookies.CSRF_COOKIE]
    for attribute in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert attribute in session_cookie
    assert "HttpOnly" not in csrf_cookie
    assert cookie_value(csrf_cookie) == cookies.csrf_token(cookie_value(session_cookie))


def test_unknown_session_kind_rejected(api: ApiCaller) -> None:
    api.verified_session("ann@example.com")

    reply = api.call("POST", "/v1/auth/login", {"email": "ann@example.com", "password": PASSWORD, "session": "jwt"})

    assert reply.status == 400
    assert reply.error_field == "session"


def test_cookie_session_reads_the_account(api: ApiCaller) -> None:
    api.verified_session("ann@example.com")
    jar = browser_log_in(api, "ann@example.com")

    reply = api.call("GET", "/v1/account", headers=cookie_header(jar))

    assert reply.status == 200
    assert reply.body["email"] == "ann@example.com"
    assert reply.body["role"] == "customer"
    assert reply.body["email_verified"] is True
    assert reply.body["impersonated"] is False


@pytest.mark.parametrize("csrf", [None, "", "forged-token"])
def test_cookie_write_without_csrf_rejected(api: ApiCaller, csrf: str | None) -> None:
    api.verified_session("ann@example.com")
    jar = browser_log_in(api, "ann@example.com")
    headers = cookie_header(jar)
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf

    reply = api.call("POST", "/v1/ssh-keys", {"name": "laptop", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ1 ann"}, headers=headers)

    assert reply.status == 403
    assert reply.error_field == "X-CSRF-Token"
    assert api.call("GET", "/v1/ssh-keys", headers=cookie_header(jar)).body["ssh_keys"] == []


def test_cookie_write_with_csrf_succeeds(api: ApiCaller) -> None:
    api.verified_session("ann@example.com")
    jar = browser_log_in(api, "ann@example.com")

    reply = api.call("POST", "/v1/payments", {"gateway": "demo", "amount": "5.00"}, headers=with_csrf(jar))

    assert reply.status == 201, reply.body


def test_csrf_of_other_session_rejected(api: ApiCaller) -> None:
    api.verified_session("ann@example.com")
    first = browser_log_in(api, "ann@example.com")
    second = browser_log_in(api, "ann@example.com")

    headers = {**cookie_header(first), "X-CSRF-Token": second[cookies.CSRF_COOKIE]}
    reply = api.call("POST", "/v1/payments", {"gateway": "demo", "amount": "5.00"}, headers=headers)

    assert reply.status == 403


def test_api_key_in_cookie_rejected(api: ApiCaller) -> None:
    token = api.verified_session("ann@example.com")
    created = api.call("POST", "/v1/api-keys", {"label": "ci", "actions": ["vms:read"]}, token)
    assert created.status == 201, created.body
    secret = created.body["secret"]

    reply = api.call("GET", "/v1/account", headers={"Cookie": f"{cookies.SESSION_COOKIE}={secret}"})

    assert reply.status == 401


def test_log_out_clears_every_cookie(api: ApiCaller) -> None:
    account_id = api.sign_up("ann@example.com")
    jar = browser_log_in(api, "ann@example.com")

    reply = api.call("POST", "/v1/auth/logout", headers=with_csrf(jar))

    assert reply.status == 200
    cleared = set_cookies(reply)
    assert set(cleared) == {cookies.SESSION_COOKIE, cookies.CSRF_COOKIE, cookies.ADMIN_COOKIE}
    assert all("Max-Age=0" in value for value in cleared.values())
    assert list(Session.query(account_id)) == []
    assert api.call("GET", "/v1/account", headers=cookie_header(jar)).status == 401


def test_panel_impersonation_restores_admin(api: ApiCaller) -> None:
    customer_id = api.sign_up("ann@example.com")
    create_admin(ADMIN_EMAIL, PASSWORD)
    admin_jar = browser_log_in(api, ADMIN_EMAIL)

    reply = api.call("POST", f"/v1/admin/users/{customer_id}/impersonate", headers=with_csrf(admin_jar))

    assert reply.status == 201, reply.body
    assert reply.body["token"] is None
    assert "Max-Age=3600" in set_cookies(reply)[cookies.SESSION_COOKIE]
    switched = {name: cookie_value(value) for name, value in set_cookies(reply).items()}
    assert switched[cookies.ADMIN_COOKIE] == admin_jar[cookies.SESSION_COOKIE]
    seen = api.call("GET", "/v1/account", headers=cookie_header(switched)).body
    assert (seen["email"], seen["impersonated"]) == ("ann@example.com", True)

    ended = api.call("POST", "/v1/auth/logout", headers=with_csrf(switched))

    assert ended.body == {"restored": "admin"}
    restored = {name: cookie_value(value) for name, value in set_cookies(ended).items()}
    assert restored[cookies.SESSION_COOKIE] == admin_jar[cookies.SESSION_COOKIE]
    assert restored[cookies.ADMIN_COOKIE] == ""
    back = api.call("GET", "/v1/account", headers=cookie_header(restored)).body
    assert (back["email"], back["impersonated"]) == (ADMIN_EMAIL, False)


def test_log_out_restores_only_admin_sessions(api: ApiCaller) -> None:
    api.sign_up("ann@example.com")
    jar = browser_log_in(api, "ann@example.com")
    second = browser_log_in(api, "ann@example.com")
    jar[cookies.ADMIN_COOKIE] = second[cookies.SESSION_COOKIE]

    reply = api.call("POST", "/v1/auth/logout", headers=with_csrf(jar))

    assert reply.body == {"restored": None}
    assert all("Max-Age=0" in value for value in set_cookies(reply).values())


def test_missing_panel_file_keeps_headers(api: ApiCaller) -> None:
    reply = api.call("GET", "/assets/missing.js")

    assert reply.status == 404
    assert reply.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_replayed_cookie_log_in_stores_no_cookie(api: ApiCaller) -> None:
    api.verified_session("ann@example.com")
    body = {"email": "ann@example.com", "password": PASSWORD, "session": "cookie"}
    headers = {"Idempotency-Key": "panel-login-1"}

    first = api.call("POST", "/v1/auth/login", body, headers=headers)
    replay = api.call("POST", "/v1/auth/login", body, headers=headers)

    assert first.status == replay.status == 200
    assert set_cookies(first)
    assert not set_cookies(replay)
    session_token = cookie_value(set_cookies(first)[cookies.SESSION_COOKIE])
    stored = " ".join(str(record.attribute_values) for record in IdempotencyRecord.scan())
    assert session_token not in stored


def test_panel_page_has_strict_csp(api: ApiCaller) -> None:
    reply = api.gateway.handle_request(method="GET", path="/", headers={}, body=b"")

    assert reply["statusCode"] == 200
    assert reply["headers"]["Content-Type"].startswith("text/html")
    assert reply["headers"]["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert reply["headers"]["X-Frame-Options"] == "DENY"


def test_panel_script_is_served_as_javascript(api: ApiCaller) -> None:
    reply = api.gateway.handle_request(method="GET", path="/assets/app.js", headers={}, body=b"")

    assert reply["statusCode"] == 200
    assert reply["headers"]["Content-Type"].startswith("text/javascript")


@pytest.mark.parametrize("name", ["missing.js", "..%2Fapp.py", "panel.py"])
def test_unknown_panel_file_is_a_json_404(api: ApiCaller, name: str) -> None:
    reply = api.call("GET", f"/assets/{name}")

    assert reply.status == 404
    assert reply.body["error"]["code"] == "not_found"


def panel_files(suffix: str) -> list[Path]:
    return sorted(STATIC_DIR.glob(f"*{suffix}"))


@pytest.mark.parametrize("page", panel_files(".html"), ids=lambda path: path.name)
def test_panel_html_has_no_inline_script_or_handler(page: Path) -> None:
    text = page.read_text()

    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text)
    assert not re.search(r"\son[a-z]+\s*=", text)
    assert "style=" not in text


@pytest.mark.parametrize("script", panel_files(".js"), ids=lambda path: path.name)
def test_panel_scripts_never_insert_markup(script: Path) -> None:
    text = script.read_text()

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in text, f"{script.name} uses {sink}"


def test_every_panel_route_names_an_exported_page() -> None:
    routes = re.findall(r'\["(/[^"]*)", "([a-z_]+\.js)", "(\w+)", "\w+"\]', (STATIC_DIR / "app.js").read_text())

    assert len(routes) >= 30
    for hash_path, module, name in routes:
        source = (STATIC_DIR / module).read_text()
        assert re.search(rf"^export (async )?function {name}\(", source, re.MULTILINE), f"{hash_path}: {module} lacks {name}"


@pytest.mark.parametrize("script", panel_files(".js"), ids=lambda path: path.name)
def test_panel_script_parses_as_a_module(script: Path) -> None:
    node = shutil.which("node")
    assert node, "Node.js is required (make installs DynamoDB Local with npm)"

    checked = subprocess.run([node, "--experimental-default-type=module", "--check", str(script)], capture_output=True, text=True)

    assert checked.returncode == 0, checked.stderr
