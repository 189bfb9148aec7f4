"""The customer pages at phone width, a session that ends while a page is open, a VM page
left while it still polls, and a page left before its module has loaded."""

from __future__ import annotations

import re
import uuid
from typing import Any

import requests
from playwright.sync_api import Page, expect

from tests.api_calls import PASSWORD
from tests.e2e.conftest import PHONE, screenshot
from tests.e2e.stack import Stack

CUSTOMER_PAGES = ["/", "/vms", "/images", "/billing", "/tickets", "/ssh-keys", "/api-keys", "/settings"]
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC9ouAHUzXUcNB+nBLR7PYvDLLqU+Sb8TV2HHs+CQnwQ phone@example.com"
# Overflowing cells: content wider than its cell, measured in CSS pixels.
CELL_OVERFLOW_SCRIPT = """() => [...document.querySelectorAll("main td")]
    .filter((cell) => cell.scrollWidth > cell.clientWidth + 1)
    .map((cell) => cell.getAttribute("data-label") + ": " + cell.textContent.slice(0, 40))"""


def customer_with_things(stack: Stack) -> tuple[str, str]:
    """A verified customer with credit, an SSH key, an API key and a ticket; returns e-mail and token."""
    email = f"phone-{uuid.uuid4().hex[:8]}@example.com"
    base = stack.url + "v1/"
    assert requests.post(base + "auth/signup", json={"email": email, "password": PASSWORD}, timeout=10).status_code == 201
    token_text = stack.mailed_token(email, "Confirm your Lobster e-mail address")
    assert requests.post(base + "auth/verify", json={"token": token_text}, timeout=10).status_code == 200
    token = requests.post(base + "auth/login", json={"email": email, "password": PASSWORD}, timeout=10).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    for path, body in (
        ("payments", {"gateway": "demo", "amount": "20.00"}),
        ("ssh-keys", {"name": "a-rather-long-laptop-key-name", "public_key": SSH_KEY}),
        ("api-keys", {"label": "deploy-pipeline-production", "actions": ["vms:read", "vms:update"], "allowed_cidrs": ["2001:db8:1234:5678::/64"]}),
        ("tickets", {"subject": "A subject long enough to wrap on a phone screen", "message": "Hello"}),
    ):
        reply = requests.post(base + path, json=body, headers=auth, timeout=10)
        assert reply.status_code in (200, 201), reply.text
    return email, token


def log_in(page: Page, email: str) -> None:
    page.goto("/#/login")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".nav-email")).to_have_text(email)


def test_customer_pages_fit_phone_width(page: Page, stack: Stack) -> None:
    email, _ = customer_with_things(stack)
    page.set_viewport_size(PHONE)
    log_in(page, email)

    for hash_path in CUSTOMER_PAGES:
        page.goto("/#" + hash_path)
        expect(page.locator("main h1")).to_be_visible()
        expect(page.locator("main .loading")).to_have_count(0)

        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow == 0, hash_path
        assert page.evaluate(CELL_OVERFLOW_SCRIPT) == [], hash_path
        screenshot(page, "phone" + hash_path.replace("/", "-").rstrip("-"))


def test_ended_session_sends_the_form_to_log_in(page: Page, stack: Stack) -> None:
    email, token = customer_with_things(stack)
    log_in(page, email)
    page.goto("/#/tickets")
    expect(page.get_by_role("heading", name="Support", level=1)).to_be_visible()

    ended = requests.post(stack.url + "v1/auth/logout-others", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert ended.json()["sessions_ended"] == 1
    page.get_by_label("Subject").fill("After the session ended")
    page.get_by_label("Message").fill("Is anyone there?")
    page.get_by_role("button", name="Open ticket").click()

    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_text("Your session has ended. Log in again to continue.")).to_be_visible()
    assert "next=%23%2Ftickets" in page.url


def test_leaving_a_provisioning_vm_stops_its_polling(page: Page, stack: Stack) -> None:
    email, token = customer_with_things(stack)
    auth = {"Authorization": f"Bearer {token}"}
    vm = requests.post(stack.url + "v1/vms", json={"name": "poll1", "region": "demo", "plan": "s1", "image": "debian-12"}, headers=auth, timeout=10).json()
    vm_reads: list[str] = []
    page.on("request", lambda request: vm_reads.append(request.url) if re.search(f"/v1/vms/{vm['id']}$", request.url) else None)
    log_in(page, email)

    page.goto(f"/#/vms/{vm['id']}")
    expect(page.get_by_role("heading", name="poll1", level=1)).to_be_visible()
    page.goto("/#/tickets")
    expect(page.get_by_role("heading", name="Support", level=1)).to_be_visible()
    reads_on_leaving = len(vm_reads)
    page.wait_for_timeout(5000)

    assert len(vm_reads) == reads_on_leaving


def test_router_skips_page_left_while_loading(page: Page, stack: Stack) -> None:
    email, token = customer_with_things(stack)
    vm = requests.post(
        stack.url + "v1/vms", json={"name": "poll2", "region": "demo", "plan": "s1", "image": "debian-12"},
        headers={"Authorization": f"Bearer {token}"}, timeout=10,
    ).json()
    held_routes: list[Any] = []
    page.route("**/assets/pages_vms.js", lambda route: held_routes.append(route))
    vm_reads: list[str] = []
    page.on("request", lambda request: vm_reads.append(request.url) if vm["id"] in request.url else None)
    log_in(page, email)

    page.goto(f"/#/vms/{vm['id']}")
    for _ in range(100):
        if held_routes:
            break
        page.wait_for_timeout(50)
    assert len(held_routes) == 1, "the VM page's module was never requested"
    page.goto("/#/tickets")
    expect(page.get_by_role("heading", name="Support", level=1)).to_be_visible()
    held_routes[0].continue_()
    page.wait_for_timeout(1000)

    assert vm_reads == []
    expect(page.get_by_role("heading", name="Support", level=1)).to_be_visible()
