"""The customer's account pages in Chromium: sign-up and e-mail verification from the mailed
link, log-in and log-out, password reset, SSH keys, API keys, support tickets and the
dashboard. Set-up that is not under test goes through the JSON API with a bearer token.
"""

from __future__ import annotations

import base64
import os
import re
import struct
import time
import uuid
from typing import Any

import pytest
import requests

from tests.api_calls import PASSWORD
from tests.e2e.conftest import PHONE, screenshot
from tests.e2e.stack import Stack

HOSTILE_SUBJECT = "<img src=x onerror=alert(1)> printer"
SECRET_PATTERN = re.compile(r"lbk_[0-9a-f]+_\S+")
ACTIVE_TIMEOUT_SECONDS = 30


def unique_email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@example.com"


def api(stack: Stack, method: str, path: str, body: Any = None, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method != "GET":
        headers["Idempotency-Key"] = uuid.uuid4().hex
    return requests.request(method, stack.url + path, json=body, headers=headers, timeout=30)


def api_token(stack: Stack, email: str, password: str = PASSWORD) -> str:
    reply = api(stack, "POST", "v1/auth/login", {"email": email, "password": password, "session": "token"})
    assert reply.status_code == 200, reply.text
    return reply.json()["token"]


def verified_customer(stack: Stack, email: str) -> str:
    """Sign up and verify through the API, then return a bearer token."""
    assert api(stack, "POST", "v1/auth/signup", {"email": email, "password": PASSWORD}).status_code == 201
    token = stack.mailed_token(email, "Confirm")
    assert api(stack, "POST", "v1/auth/verify", {"token": token}).status_code == 200
    return api_token(stack, email)


def ed25519_key_line(comment: str) -> str:
    """A well-formed OpenSSH ed25519 public key line with random key bytes."""
    kind = b"ssh-ed25519"
    blob = struct.pack(">I", len(kind)) + kind + struct.pack(">I", 32) + os.urandom(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


def wait_until_active(stack: Stack, vm_id: str, token: str) -> None:
    """Poll the VM until the demo backend has provisioned it, which starts its billing."""
    deadline = time.monotonic() + ACTIVE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if api(stack, "GET", f"v1/vms/{vm_id}", token=token).json()["state"] == "active":
            return
        time.sleep(0.5)
    raise AssertionError(f"VM {vm_id} was not active within {ACTIVE_TIMEOUT_SECONDS} seconds")


def log_in(page: Any, email: str, password: str = PASSWORD) -> None:
    page.goto("/#/login")
    page.get_by_role("heading", name="Log in").wait_for()
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()


def field_error(page: Any, field: str) -> Any:
    return page.locator(f'[data-error-for="{field}"]')


@pytest.fixture(scope="module")
def customer(stack: Stack) -> dict[str, str]:
    """A verified customer shared by this module's page tests. Each test logs in afresh."""
    email = unique_email("customer")
    return {"email": email, "token": verified_customer(stack, email)}


@pytest.fixture(scope="module")
def admin_token(stack: Stack) -> str:
    email = unique_email("staff")
    stack.create_admin(email, PASSWORD)
    return api_token(stack, email)


def test_sign_up_verify_log_out_and_log_in(page: Any, stack: Stack) -> None:
    email = unique_email("newcomer")
    page.goto("/#/signup")
    page.get_by_role("heading", name="Create an account").wait_for()
    screenshot(page, "signup")

    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Check your e-mail").wait_for()
    assert page.locator("#banner").is_visible()

    token = stack.mailed_token(email, "Confirm")
    page.goto(f"/#/verify?token={token}")
    page.get_by_role("heading", name="E-mail address verified").wait_for()
    assert page.get_by_text(f"{email} is verified").is_visible()
    assert page.locator("#banner").is_hidden()

    page.get_by_role("link", name="Go to the dashboard").click()
    page.get_by_role("heading", name="Get started").wait_for()
    assert page.get_by_role("link", name="Add credit").first.is_visible()
    assert page.get_by_role("link", name="Create your first VM").is_visible()

    page.get_by_role("button", name="Log out").click()
    page.get_by_role("heading", name="Log in").wait_for()
    screenshot(page, "login")

    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Log in").click()
    page.locator(".form-error").filter(has_text="password is incorrect").wait_for()

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()
    assert page.locator(".nav-email").inner_text() == email


def test_log_in_returns_to_requested_page(page: Any, customer: dict[str, str]) -> None:
    page.goto("/#/ssh-keys")
    page.get_by_role("heading", name="Log in").wait_for()

    page.get_by_label("E-mail").fill(customer["email"])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.get_by_role("heading", name="SSH keys").wait_for()
    assert page.url.endswith("#/ssh-keys")


def test_sign_up_short_password_shows_error_at_field(page: Any) -> None:
    page.goto("/#/signup")
    page.get_by_label("E-mail").fill(unique_email("short"))
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()

    error = field_error(page, "password")
    error.wait_for()
    assert "at least 10 characters" in error.inner_text()
    assert page.get_by_label("Password").get_attribute("aria-invalid") == "true"
    assert page.get_by_role("heading", name="Create an account").is_visible()


def test_password_reset_from_mailed_token(page: Any, stack: Stack) -> None:
    email = unique_email("forgetful")
    assert api(stack, "POST", "v1/auth/signup", {"email": email, "password": PASSWORD}).status_code == 201
    new_password = "a much newer password"

    page.goto("/#/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_role("heading", name="Reset your password").wait_for()
    page.get_by_label("E-mail").fill(email)
    page.get_by_role("button", name="Send reset link").click()
    page.get_by_text("If an account uses this address").wait_for()

    token = stack.mailed_token(email, "Reset")
    page.goto(f"/#/reset?token={token}")
    page.get_by_label("New password", exact=True).fill(new_password)
    page.get_by_label("Confirm new password").fill("something else entirely")
    page.get_by_role("button", name="Change password").click()
    mismatch = field_error(page, "new_password_confirmation")
    mismatch.wait_for()
    assert "does not match" in mismatch.inner_text()

    page.get_by_label("Confirm new password").fill(new_password)
    page.get_by_role("button", name="Change password").click()
    page.get_by_role("heading", name="Password changed").wait_for()
    page.get_by_role("link", name="Log in").last.click()
    log_in(page, email, new_password)


def test_settings_change_password(page: Any, stack: Stack) -> None:
    email = unique_email("settled")
    verified_customer(stack, email)
    new_password = "settings page password"
    log_in(page, email)

    page.goto("/#/settings")
    page.get_by_role("heading", name="Settings").wait_for()
    assert page.get_by_text("Verified", exact=True).is_visible()
    screenshot(page, "settings")

    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password", exact=True).fill(new_password)
    page.get_by_label("Confirm new password").fill(new_password)
    page.get_by_role("button", name="Change password").click()
    wrong = field_error(page, "current_password")
    wrong.wait_for()
    assert "incorrect" in wrong.inner_text()

    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.locator(".toast").filter(has_text="Password changed").wait_for()
    assert api_token(stack, email, new_password)


def test_ssh_key_add_and_delete(page: Any, customer: dict[str, str]) -> None:
    log_in(page, customer["email"])
    page.goto("/#/ssh-keys")
    page.get_by_role("heading", name="SSH keys").wait_for()

    page.get_by_label("Name").fill("laptop")
    page.get_by_label("Public key").fill("ssh-ed25519 not-base64!")
    page.get_by_role("button", name="Add key").click()
    field_error(page, "public_key").wait_for()
    assert page.get_by_label("Public key").get_attribute("aria-invalid") == "true"

    page.get_by_label("Public key").fill(ed25519_key_line("ann@laptop"))
    page.get_by_role("button", name="Add key").click()
    row = page.get_by_role("row").filter(has_text="laptop")
    row.wait_for()
    assert "SHA256:" in row.inner_text()
    assert "ssh-ed25519" in row.inner_text()
    screenshot(page, "ssh-keys")

    row.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    page.get_by_text("No SSH keys yet").wait_for()


def test_api_key_secret_shown_once_and_revoked(page: Any, stack: Stack, customer: dict[str, str]) -> None:
    log_in(page, customer["email"])
    page.goto("/#/api-keys")
    page.get_by_role("heading", name="API keys").wait_for()

    page.get_by_label("Label").fill("deploy script")
    page.get_by_label("vms:read").check()
    page.get_by_label("Allowed address ranges").fill("127.0.0.0/8\n2001:db8::/32\n")
    page.get_by_role("button", name="Create key").click()

    secret = page.locator("#new-api-key-secret")
    secret.wait_for()
    secret_text = secret.inner_text().strip()
    assert SECRET_PATTERN.fullmatch(secret_text)
    assert page.get_by_text("cannot be shown again").is_visible()
    row = page.get_by_role("row").filter(has_text="deploy script")
    row.wait_for()
    assert "vms:read" in row.inner_text()
    assert "127.0.0.0/8" in row.inner_text()
    assert row.get_by_text("Never").is_visible()
    screenshot(page, "api-keys")
    page.set_viewport_size(PHONE)
    screenshot(page, "api-keys-phone")
    assert api(stack, "GET", "v1/vms", token=secret_text).status_code == 200

    page.reload()
    page.get_by_role("row").filter(has_text="deploy script").wait_for()
    assert secret_text not in page.content()
    assert page.locator("#new-api-key-secret").count() == 0

    page.get_by_role("row").filter(has_text="deploy script").get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    page.get_by_text("No API keys yet.").wait_for()
    assert api(stack, "GET", "v1/vms", token=secret_text).status_code == 401


def test_api_key_bad_range_shows_error_at_field(page: Any, customer: dict[str, str]) -> None:
    log_in(page, customer["email"])
    page.goto("/#/api-keys")

    page.get_by_label("Label").fill("broken")
    page.get_by_label("Allowed address ranges").fill("300.1.2.0/24")
    page.get_by_role("button", name="Create key").click()

    error = field_error(page, "allowed_cidrs")
    error.wait_for()
    assert "300.1.2.0/24" in error.inner_text()
    assert page.locator("#new-api-key-secret").count() == 0


def test_ticket_open_reply_and_close(page: Any, stack: Stack, customer: dict[str, str], admin_token: str) -> None:
    log_in(page, customer["email"])
    page.goto("/#/tickets")
    page.get_by_role("heading", name="Support").wait_for()

    page.get_by_label("Subject").fill(HOSTILE_SUBJECT)
    page.get_by_label("Message").fill("The printer on my VM\n  prints nothing.")
    page.get_by_role("button", name="Open ticket").click()
    link = page.get_by_role("link", name=HOSTILE_SUBJECT)
    link.wait_for()
    assert page.locator("main img").count() == 0
    assert page.get_by_role("row").filter(has_text=HOSTILE_SUBJECT).get_by_text("Waiting for support").is_visible()
    screenshot(page, "tickets")

    link.click()
    page.get_by_role("heading", name=HOSTILE_SUBJECT).wait_for()
    ticket_id = page.url.rsplit("/", 1)[-1]
    staff = api(stack, "POST", f"v1/admin/tickets/{ticket_id}/reply", {"message": "Which VM is it?"}, admin_token)
    assert staff.status_code == 201, staff.text
    page.reload()
    page.locator(".message-staff").filter(has_text="Which VM is it?").wait_for()
    assert page.locator(".message-staff").get_by_text("Lobster support").is_visible()
    first = page.locator(".message").first.locator(".message-body").inner_text()
    assert first == "The printer on my VM\n  prints nothing."

    page.get_by_label("Your reply").fill("The one called web1.")
    page.get_by_role("button", name="Send reply").click()
    page.locator(".message").filter(has_text="The one called web1.").wait_for()
    assert page.locator(".message").count() == 3
    assert page.locator("main img").count() == 0
    screenshot(page, "ticket")
    page.set_viewport_size(PHONE)
    screenshot(page, "ticket-phone")

    page.get_by_role("button", name="Close ticket").click()
    page.get_by_role("dialog").get_by_role("button", name="Close ticket").click()
    page.get_by_text("This ticket is closed").wait_for()
    assert page.get_by_label("Your reply").count() == 0


def test_dashboard_shows_balance_runway_and_bandwidth(page: Any, stack: Stack, customer: dict[str, str], admin_token: str) -> None:
    token = customer["token"]
    paid = api(stack, "POST", "v1/payments", {"gateway": "demo", "amount": "20.00"}, token)
    assert paid.status_code == 201, paid.text
    created = api(stack, "POST", "v1/vms", {"name": "web1", "region": "demo", "plan": "s1", "image": "debian-12"}, token)
    assert created.status_code == 201, created.text
    wait_until_active(stack, created.json()["id"], token)
    notice = {"title": "Maintenance in demo", "body": "Hosts restart on Sunday.\nExpect a short pause.", "level": "maintenance"}
    assert api(stack, "POST", "v1/admin/announcements", notice, admin_token).status_code == 201

    log_in(page, customer["email"])
    page.get_by_role("heading", name="Credit outlook").wait_for()
    page.get_by_role("heading", name="Bandwidth this month").wait_for()
    page.get_by_role("meter", name="Bandwidth used in Demo region (local)").wait_for()

    balance = page.locator(".summary .card").filter(has_text="Balance").locator(".stat")
    assert balance.inner_text().startswith("20.00")
    assert page.get_by_role("link", name="web1").get_attribute("href") == f"#/vms/{created.json()['id']}"
    assert page.get_by_role("heading", name="Maintenance in demo").is_visible()
    assert page.get_by_role("meter", name="Bandwidth used in Demo region (local)").is_visible()
    assert page.get_by_text("GiB used").first.is_visible()
    assert page.get_by_role("heading", name="Get started").count() == 0
    assert "credit lasts about" in page.locator(".runway").inner_text()
    screenshot(page, "dashboard")

    page.set_viewport_size(PHONE)
    page.get_by_role("heading", name="Credit outlook").scroll_into_view_if_needed()
    screenshot(page, "dashboard-phone")
