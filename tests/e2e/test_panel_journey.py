"""A new customer's first hour, end to end in Chromium.

The customer signs up and verifies the address from the e-mail the local SMTP server received.
They add demo credit, create a VM and watch it become active. The hourly billing runs, the
charge shows in the ledger, and the VM is deleted. Then an admin, using the keyboard alone,
adjusts that customer's credit and finds it in the audit log.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from tests.api_calls import PASSWORD
from tests.e2e.conftest import screenshot
from tests.e2e.stack import DEMO_PROVISION_SECONDS, Stack

ACTIVE_TIMEOUT_MILLISECONDS = (DEMO_PROVISION_SECONDS + 8) * 1000
VM_NAME = "journey1"


def test_customer_first_hour_and_admin_adjustment(page: Page, stack: Stack) -> None:
    email = f"journey-{uuid.uuid4().hex[:8]}@example.com"

    sign_up_and_verify(page, stack, email)
    add_demo_credit(page, "25.00")
    started = datetime.now(UTC)
    vm_hash = create_vm_and_wait(page)

    stack.cli("bill", "--hour", (started + timedelta(hours=1)).strftime("%Y-%m-%dT%H"))
    find_charge_in_ledger(page)
    delete_vm(page, vm_hash)
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    admin_email = f"journey-admin-{uuid.uuid4().hex[:8]}@example.com"
    stack.create_admin(admin_email, PASSWORD)
    log_in_by_keyboard(page, admin_email)
    adjust_credit(page, email)
    find_adjustment_in_audit_log(page)


def sign_up_and_verify(page: Page, stack: Stack, email: str) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.locator("#nav").get_by_role("link", name="Sign up").click()
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()

    token = stack.mailed_token(email, "Confirm your Lobster e-mail address")
    page.goto(f"/#/verify?token={token}")
    expect(page.get_by_role("heading", name="E-mail address verified")).to_be_visible()
    expect(page.locator("#banner")).to_be_hidden()
    screenshot(page, "journey-verified")


def add_demo_credit(page: Page, amount: str) -> None:
    page.locator("#nav").get_by_role("link", name="Billing").click()
    page.get_by_role("radio", name=re.compile("Demo credit")).check()
    page.get_by_label("Amount").fill(amount)
    page.get_by_role("button", name="Add credit").click()

    expect(page.get_by_text(f"Credit added. Your balance is now {amount} USD.")).to_be_visible()


def create_vm_and_wait(page: Page) -> str:
    page.locator("#nav").get_by_role("link", name="VMs").click()
    page.get_by_role("link", name="Create VM").click()
    page.get_by_label("Region").select_option("demo")
    page.get_by_text("Small 1 GB", exact=True).click()
    page.get_by_label("Image").select_option(index=0)
    page.get_by_label("Name").fill(VM_NAME)
    page.get_by_role("button", name="Create VM").click()

    expect(page.get_by_role("heading", name=VM_NAME, level=1)).to_be_visible()
    expect(page.locator(".badge", has_text="active")).to_be_visible(timeout=ACTIVE_TIMEOUT_MILLISECONDS)
    screenshot(page, "journey-vm-active")
    return page.evaluate("location.hash")


def find_charge_in_ledger(page: Page) -> None:
    page.locator("#nav").get_by_role("link", name="Billing").click()

    charge = page.get_by_role("row", name=re.compile(f"VM {VM_NAME}, plan Small 1 GB"))
    expect(charge).to_contain_text("-0.0075 USD")
    screenshot(page, "journey-ledger")


def delete_vm(page: Page, vm_hash: str) -> None:
    page.goto("/" + vm_hash)
    page.get_by_role("button", name="Delete VM").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete VM").click()

    expect(page).to_have_url(re.compile(r"#/vms$"))
    expect(page.get_by_role("link", name=VM_NAME)).to_have_count(0)


def log_in_by_keyboard(page: Page, email: str) -> None:
    """Fill and send the log-in form with Tab, typing and Enter only."""
    page.goto("/#/login")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_label("E-mail")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")

    expect(page.locator(".nav-email")).to_have_text(email)


def adjust_credit(page: Page, customer_email: str) -> None:
    page.locator("#nav").get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", level=1, name="Users")).to_be_visible()
    page.get_by_label("E-mail starts with").fill(customer_email)
    page.get_by_label("E-mail starts with").press("Enter")
    page.get_by_role("link", name=customer_email).click()
    expect(page.get_by_role("heading", level=1, name=customer_email)).to_be_visible()

    page.get_by_label("Amount").fill("-2.50")
    page.get_by_label("Reason").fill("Journey correction")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Apply adjustment")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.get_by_text(re.compile(r"New balance: 22\.49"))).to_be_visible()


def find_adjustment_in_audit_log(page: Page) -> None:
    page.locator("#nav").get_by_role("link", name="Audit log").click()

    row = page.locator("tr", has=page.get_by_text("credit.adjusted")).filter(has_text="Journey correction")
    expect(row).to_have_count(1)
    screenshot(page, "journey-audit")
