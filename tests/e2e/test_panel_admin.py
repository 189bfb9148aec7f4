"""The admin pages in Chromium: finding and crediting an account, the audit log, impersonation,
the catalog pages, announcements, tickets, payments and VMs, and that customers see none of it.

Set-up (accounts, tickets, payments, VMs) goes through the JSON API with requests; what each
test checks is driven through the browser.
"""

from __future__ import annotations

import re
import time
import uuid

import requests
from playwright.sync_api import expect

from tests.api_calls import PASSWORD
from tests.e2e.conftest import DESKTOP, PHONE, open_route, screenshot
from tests.e2e.stack import Stack

VM_ACTIVE_TIMEOUT_SECONDS = 20


def unique_email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@lobster.test"


def api_token(stack: Stack, email: str) -> str:
    reply = requests.post(stack.url + "v1/auth/login", json={"email": email, "password": PASSWORD, "session": "token"}, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()["token"]


def sign_up_customer(stack: Stack, label: str) -> tuple[str, str, str]:
    """Sign a customer up through the API; return (e-mail, account id, bearer token)."""
    email = unique_email(label)
    reply = requests.post(stack.url + "v1/auth/signup", json={"email": email, "password": PASSWORD}, timeout=10)
    assert reply.status_code == 201, reply.text
    return email, reply.json()["account_id"], api_token(stack, email)


def call_api(stack: Stack, method: str, path: str, token: str, body: object = None) -> dict:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
    reply = requests.request(method, stack.url + path, json=body, headers=headers, timeout=20)
    assert reply.status_code in (200, 201), reply.text
    return reply.json()


def new_admin(stack: Stack, label: str) -> str:
    email = unique_email(label)
    stack.create_admin(email, PASSWORD)
    return email


def log_in(page: object, email: str) -> None:
    """Log in through the login page and wait for the navigation to show the account."""
    page.goto("/#/login")  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()  # type: ignore[attr-defined]
    page.get_by_label("E-mail").fill(email)  # type: ignore[attr-defined]
    page.get_by_label("Password").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]
    expect(page.locator(".nav-email")).to_have_text(email)  # type: ignore[attr-defined]


def open_admin_page(page: object, hash_path: str, heading: str) -> None:
    open_route(page, hash_path)
    expect(page.get_by_role("heading", level=1, name=heading)).to_be_visible()  # type: ignore[attr-defined]


def test_credit_adjustment_updates_balance_and_audit(page: object, stack: Stack) -> None:
    admin = new_admin(stack, "admin-credit")
    customer, customer_id, _ = sign_up_customer(stack, "credit-customer")
    log_in(page, admin)

    open_admin_page(page, "/admin/users", "Users")
    page.get_by_label("E-mail starts with").fill(customer.split("@")[0])  # type: ignore[attr-defined]
    page.get_by_role("button", name="Search").click()  # type: ignore[attr-defined]
    user_link = page.get_by_role("link", name=customer)  # type: ignore[attr-defined]
    expect(user_link).to_be_visible()
    screenshot(page, "admin-users")
    user_link.click()
    expect(page.get_by_role("heading", level=1, name=customer)).to_be_visible()  # type: ignore[attr-defined]

    page.get_by_label("Amount").fill("12,50")  # type: ignore[attr-defined]
    page.get_by_label("Reason").fill("Goodwill for the outage")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Apply adjustment").click()  # type: ignore[attr-defined]
    amount_error = page.locator('[data-error-for="amount"]')  # type: ignore[attr-defined]
    expect(amount_error).to_contain_text("not a decimal number")
    expect(page.get_by_label("Amount")).to_have_attribute("aria-invalid", "true")  # type: ignore[attr-defined]

    page.get_by_label("Amount").fill("12.50")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Apply adjustment").click()  # type: ignore[attr-defined]
    expect(page.get_by_text("New balance: 12.50.")).to_be_visible()  # type: ignore[attr-defined]
    expect(page.locator(".admin-balance")).to_have_text("12.50")  # type: ignore[attr-defined]
    expect(amount_error).to_be_hidden()
    screenshot(page, "admin-user")
    page.set_viewport_size(PHONE)  # type: ignore[attr-defined]
    screenshot(page, "admin-user-phone")
    page.set_viewport_size(DESKTOP)  # type: ignore[attr-defined]

    page.locator("#nav").get_by_role("link", name="Audit log").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", level=1, name="Audit log")).to_be_visible()  # type: ignore[attr-defined]
    target = f"account:{customer_id}"
    event_row = page.locator("tr", has=page.get_by_text("credit.adjusted")).filter(has_text=target)  # type: ignore[attr-defined]
    expect(event_row).to_have_count(1)
    expect(event_row).to_contain_text("Goodwill for the outage")
    expect(event_row).to_contain_text("127.0.0.1")

    page.get_by_label("Target").fill(target)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Apply filters").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name=f"Events about {target}")).to_be_visible()  # type: ignore[attr-defined]
    expect(page.locator("tr", has=page.get_by_text("credit.adjusted"))).to_have_count(1)  # type: ignore[attr-defined]
    screenshot(page, "admin-audit")


def test_impersonation_shows_banner_and_ends(page: object, stack: Stack) -> None:
    admin = new_admin(stack, "admin-imp")
    customer, customer_id, _ = sign_up_customer(stack, "imp-customer")
    log_in(page, admin)

    open_admin_page(page, f"/admin/users/{customer_id}", customer)
    page.get_by_role("button", name="Impersonate").click()  # type: ignore[attr-defined]
    dialog = page.get_by_role("dialog")  # type: ignore[attr-defined]
    expect(dialog).to_contain_text(customer)
    dialog.get_by_role("button", name="Impersonate").click()

    banner = page.locator("#banner")  # type: ignore[attr-defined]
    expect(banner).to_contain_text(f"You are viewing the panel as {customer}")
    expect(page.locator(".nav-email")).to_have_text(customer)  # type: ignore[attr-defined]
    expect(page.locator("#nav").get_by_role("link", name="Audit log")).to_have_count(0)  # type: ignore[attr-defined]

    banner.get_by_role("button", name="End impersonation").click()
    expect(banner).to_be_hidden()
    expect(page.locator(".nav-email")).to_have_text(admin)  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", level=1, name="Users")).to_be_visible()  # type: ignore[attr-defined]


def test_delete_refused_for_funded_account(page: object, stack: Stack) -> None:
    admin = new_admin(stack, "admin-delete")
    customer, customer_id, _ = sign_up_customer(stack, "delete-customer")
    call_api(stack, "POST", f"v1/admin/users/{customer_id}/credit", api_token(stack, admin), {"amount": "1.00", "reason": "Trial"})
    log_in(page, admin)

    open_admin_page(page, f"/admin/users/{customer_id}", customer)
    page.get_by_role("button", name="Delete account").click()  # type: ignore[attr-defined]
    dialog = page.get_by_role("dialog")  # type: ignore[attr-defined]
    expect(dialog).to_contain_text(f"Delete the account {customer}?")
    dialog.get_by_role("button", name="Delete account").click()

    expect(page.locator(".action-result .alert-error")).to_contain_text("has a balance of 1.00")  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", level=1, name=customer)).to_be_visible()  # type: ignore[attr-defined]


def test_catalog_pages_create_items(page: object, stack: Stack) -> None:
    admin = new_admin(stack, "admin-catalog")
    log_in(page, admin)
    plan_id = f"e2e-{uuid.uuid4().hex[:6]}"

    open_admin_page(page, "/admin/plans", "Plans")
    page.get_by_label("Plan id").fill(plan_id)  # type: ignore[attr-defined]
    page.get_by_label("Name").fill("Browser test plan")  # type: ignore[attr-defined]
    page.get_by_label("Virtual CPUs").fill("2")  # type: ignore[attr-defined]
    page.get_by_label("Memory (MiB)").fill("2048")  # type: ignore[attr-defined]
    page.get_by_label("Disk (GB)").fill("40")  # type: ignore[attr-defined]
    page.get_by_label("Monthly bandwidth (GiB)").fill("2000")  # type: ignore[attr-defined]
    page.get_by_label("Price per hour").fill("0.0125")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Create plan").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name=f"Plan {plan_id}: Browser test plan")).to_be_visible()  # type: ignore[attr-defined]
    plan_row = page.locator("tr", has=page.get_by_role("link", name=re.compile(plan_id)))  # type: ignore[attr-defined]
    expect(plan_row).to_contain_text("0.0125")
    expect(plan_row).to_contain_text("Not offered")

    page.get_by_label("Provider plan id").fill("demo-2gb")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Offer in region").click()  # type: ignore[attr-defined]
    expect(plan_row).to_contain_text("demo (demo-2gb)")
    screenshot(page, "admin-plans")

    open_admin_page(page, "/admin/regions", "Regions")
    page.get_by_label("Region id").fill("e2e-west")  # type: ignore[attr-defined]
    page.get_by_label("Name").fill("Browser test region")  # type: ignore[attr-defined]
    page.get_by_label("Backend type").fill("demo")  # type: ignore[attr-defined]
    page.get_by_label("Settings (JSON)").fill("{region: west}")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Add region").click()  # type: ignore[attr-defined]
    expect(page.locator('[data-error-for="settings"]')).to_contain_text("not valid JSON")  # type: ignore[attr-defined]
    page.get_by_label("Settings (JSON)").fill('{"region": "west"}')  # type: ignore[attr-defined]
    page.get_by_role("button", name="Add region").click()  # type: ignore[attr-defined]
    region_row = page.locator("tr", has_text="Browser test region")  # type: ignore[attr-defined]
    expect(region_row).to_contain_text("Disabled")
    region_row.get_by_role("button", name="Enable").click()
    expect(region_row).to_contain_text("Enabled")
    screenshot(page, "admin-regions")

    open_admin_page(page, "/admin/images", "Catalog images")
    expect(page.get_by_role("cell", name=re.compile(r"^debian-12 "))).to_be_visible()  # type: ignore[attr-defined]
    page.get_by_label("Image id", exact=True).fill("e2e-linux-1.0")  # type: ignore[attr-defined]
    page.get_by_label("Name").fill("Browser test Linux")  # type: ignore[attr-defined]
    page.get_by_label("Region").select_option("demo")  # type: ignore[attr-defined]
    page.get_by_label("Provider image id").fill("e2e-linux-x64")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Add image").click()  # type: ignore[attr-defined]
    expect(page.locator("tr", has_text="Browser test Linux")).to_contain_text("Disabled")  # type: ignore[attr-defined]

    open_admin_page(page, "/admin/announcements", "Announcements")
    title = f"Maintenance {uuid.uuid4().hex[:6]}"
    page.get_by_label("Title").fill(title)  # type: ignore[attr-defined]
    page.get_by_label("Text").fill("The demo region restarts on Saturday at 02:00 UTC.")  # type: ignore[attr-defined]
    page.get_by_label("Level").select_option("maintenance")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Post announcement").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name=re.compile(title))).to_be_visible()  # type: ignore[attr-defined]
    screenshot(page, "admin-announcements")
    public = requests.get(stack.url + "v1/announcements", timeout=10).json()["announcements"]
    assert title in [item["title"] for item in public]


def test_staff_reply_reaches_customer(page: object, stack: Stack) -> None:
    admin = new_admin(stack, "admin-tickets")
    _, _, customer_token = sign_up_customer(stack, "ticket-customer")
    subject = f"Disk is slow {uuid.uuid4().hex[:6]}"
    ticket = call_api(stack, "POST", "v1/tickets", customer_token, {"subject": subject, "message": "Writes take seconds."})
    log_in(page, admin)

    open_admin_page(page, "/admin/tickets", "Tickets")
    ticket_link = page.get_by_role("link", name=subject)  # type: ignore[attr-defined]
    expect(ticket_link).to_be_visible()
    screenshot(page, "admin-tickets")
    ticket_link.click()
    expect(page.get_by_role("heading", level=1, name=subject)).to_be_visible()  # type: ignore[attr-defined]
    page.get_by_label("Staff reply").fill("We moved your VM to a faster disk.")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Send reply").click()  # type: ignore[attr-defined]
    expect(page.locator(".message-staff")).to_contain_text("We moved your VM to a faster disk.")  # type: ignore[attr-defined]
    expect(page.locator("dl.facts")).to_contain_text("answered")  # type: ignore[attr-defined]

    seen = call_api(stack, "GET", f"v1/tickets/{ticket['id']}", customer_token)
    assert [message["author"] for message in seen["messages"]] == ["customer", "staff"]
    assert seen["status"] == "answered"


def wait_until_active(stack: Stack, token: str, vm_id: str) -> None:
    deadline = time.monotonic() + VM_ACTIVE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if call_api(stack, "GET", f"v1/vms/{vm_id}", token)["state"] == "active":
            return
        time.sleep(0.5)
    raise AssertionError(f"VM {vm_id} did not become active within {VM_ACTIVE_TIMEOUT_SECONDS} seconds")


def test_payments_list_and_vm_suspension(page: object, stack: Stack) -> None:
    admin = new_admin(stack, "admin-vms")
    customer, customer_id, customer_token = sign_up_customer(stack, "vm-customer")
    verify_token = stack.mailed_token(customer, "Confirm your")
    assert requests.post(stack.url + "v1/auth/verify", json={"token": verify_token}, timeout=10).status_code == 200
    call_api(stack, "POST", "v1/payments", customer_token, {"gateway": "demo", "amount": "20.00"})
    vm = call_api(stack, "POST", "v1/vms", customer_token, {"name": "web-e2e", "region": "demo", "plan": "s1", "image": "debian-12"})
    wait_until_active(stack, customer_token, vm["id"])
    log_in(page, admin)

    open_admin_page(page, f"/admin/payments?account_id={customer_id}", "Payments")
    payment_row = page.locator("tbody tr", has_text="demo")  # type: ignore[attr-defined]
    expect(payment_row).to_contain_text("20.00")
    page.get_by_label("Only payments flagged for review").check()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Apply filters").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name="Flagged payments")).to_be_visible()  # type: ignore[attr-defined]
    expect(page.get_by_text("No payment matches these filters.")).to_be_visible()  # type: ignore[attr-defined]
    page.get_by_label("Only payments flagged for review").uncheck()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Apply filters").click()  # type: ignore[attr-defined]
    expect(payment_row).to_contain_text("20.00")
    screenshot(page, "admin-payments")

    open_admin_page(page, f"/admin/vms?account_id={customer_id}", "All VMs")
    page.get_by_role("link", name="web-e2e").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", level=1, name="web-e2e")).to_be_visible()  # type: ignore[attr-defined]
    page.get_by_label("Reason").fill("Abuse report from the browser test")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Suspend").click()  # type: ignore[attr-defined]
    page.get_by_role("dialog").get_by_role("button", name="Suspend").click()  # type: ignore[attr-defined]
    expect(page.locator("dl.facts")).to_contain_text("Suspended by an admin")  # type: ignore[attr-defined]
    expect(page.get_by_role("button", name="Unsuspend")).to_be_visible()  # type: ignore[attr-defined]
    page.get_by_role("link", name="Audit log of this VM").click()  # type: ignore[attr-defined]
    suspension = page.locator("tr", has=page.get_by_text("vm.suspend"))  # type: ignore[attr-defined]
    expect(suspension).to_contain_text("Abuse report from the browser test")

    page.locator("#nav").get_by_role("link", name="All VMs").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", level=1, name="All VMs")).to_be_visible()  # type: ignore[attr-defined]
    page.get_by_label("State").select_option("active")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Apply filters").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("link", name="web-e2e")).to_be_visible()  # type: ignore[attr-defined]
    screenshot(page, "admin-vms")


def test_customer_cannot_open_admin_pages(page: object, stack: Stack) -> None:
    customer, _, _ = sign_up_customer(stack, "curious-customer")
    log_in(page, customer)

    page.goto("/#/admin/users")  # type: ignore[attr-defined]

    expect(page).to_have_url(re.compile(r"#/$"))  # type: ignore[arg-type]
    expect(page.locator("#nav")).not_to_contain_text("Audit log")  # type: ignore[attr-defined]
    expect(page.locator(".nav-heading")).to_have_count(0)  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", level=1, name="Users")).to_have_count(0)  # type: ignore[attr-defined]
