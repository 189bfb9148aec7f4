"""The customer's VM, image and billing pages in Chromium. A customer adds demo credit, creates
a VM and watches it provision without a reload, renames and deletes it, and finds the hourly
charge in the ledger, its chart and its CSV. The API's errors for missing credit and for an
image URL on a private address appear on the page."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import requests

from tests.api_calls import PASSWORD
from tests.e2e.conftest import PHONE, log_in_with_cookie, open_route, screenshot
from tests.e2e.stack import DEMO_PROVISION_SECONDS, Stack

# Long enough for the demo backend's provisioning plus two polls of the page.
ACTIVE_TIMEOUT_MILLISECONDS = (DEMO_PROVISION_SECONDS + 8) * 1000
DEMO_PLAN = "Small 1 GB"
DEMO_PLAN_HOURLY = "0.0075"


def unique_email(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}@lobster.test"


def verified_customer(stack: Stack, label: str) -> str:
    """Sign up through the API and verify the address with the mailed token."""
    email = unique_email(label)
    signed_up = requests.post(stack.url + "v1/auth/signup", json={"email": email, "password": PASSWORD}, timeout=10)
    assert signed_up.status_code == 201, signed_up.text
    token = stack.mailed_token(email, "Confirm your Lobster e-mail address")
    verified = requests.post(stack.url + "v1/auth/verify", json={"token": token}, timeout=10)
    assert verified.status_code == 200, verified.text
    return email


def log_in(page: object, email: str, hash_path: str) -> None:
    """Log in with the panel's cookie session, load the panel again, then open `hash_path`."""
    status = log_in_with_cookie(page, email, PASSWORD)
    assert status == 200
    page.reload()  # type: ignore[attr-defined]
    page.locator(".nav-email").wait_for(state="attached")  # type: ignore[attr-defined]
    page.locator("main h1").wait_for()  # type: ignore[attr-defined]
    open_route(page, hash_path)


def add_demo_credit(page: object, amount: str) -> None:
    page.get_by_role("radio", name=re.compile("Demo credit")).check()  # type: ignore[attr-defined]
    page.get_by_label("Amount").fill(amount)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Add credit").click()  # type: ignore[attr-defined]


def create_vm(page: object, name: str) -> None:
    page.get_by_label("Region").select_option("demo")  # type: ignore[attr-defined]
    page.get_by_text(DEMO_PLAN, exact=True).click()  # type: ignore[attr-defined]
    page.get_by_label("Image").select_option(index=0)  # type: ignore[attr-defined]
    page.get_by_label("Name").fill(name)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Create VM").click()  # type: ignore[attr-defined]


def billable_hour(started: datetime) -> str:
    """The hour whose run charges a VM's first VM-hour: the hour in which that VM-hour ends."""
    return (started + timedelta(hours=1)).strftime("%Y-%m-%dT%H")


def test_vm_life_cycle_and_ledger(page: object, stack: Stack) -> None:
    email = verified_customer(stack, "vm-flow")
    log_in(page, email, "/billing")

    add_demo_credit(page, "50.00")
    page.get_by_text("Credit added. Your balance is now 50.00 USD.").wait_for()  # type: ignore[attr-defined]
    assert page.locator(".balance").inner_text() == "50.00 USD"  # type: ignore[attr-defined]
    screenshot(page, "billing")

    open_route(page, "/vms")
    page.get_by_role("link", name="Create VM").click()  # type: ignore[attr-defined]
    page.get_by_role("heading", name="Create VM").wait_for()  # type: ignore[attr-defined]
    screenshot(page, "vm-create")
    started = datetime.now(UTC)
    create_vm(page, "web1")

    page.wait_for_url(re.compile(r"#/vms/vm_[0-9a-f]{12}$"))  # type: ignore[attr-defined]
    page.get_by_role("heading", name="web1").wait_for()  # type: ignore[attr-defined]
    page.evaluate("window.samePageLoad = true")  # type: ignore[attr-defined]
    assert page.locator(".badge", has_text="provisioning").is_visible()  # type: ignore[attr-defined]
    screenshot(page, "vm-provisioning")
    page.locator(".badge", has_text="active").wait_for(timeout=ACTIVE_TIMEOUT_MILLISECONDS)  # type: ignore[attr-defined]
    assert page.evaluate("window.samePageLoad") is True  # type: ignore[attr-defined]
    assert page.get_by_role("button", name="Stop").is_visible()  # type: ignore[attr-defined]
    assert page.get_by_role("button", name="Open console").is_visible()  # type: ignore[attr-defined]
    screenshot(page, "vm-active")

    page.get_by_label("New name").fill("web2")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Rename").click()  # type: ignore[attr-defined]
    page.get_by_role("heading", name="web2", level=1).wait_for()  # type: ignore[attr-defined]
    vm_hash = page.evaluate("location.hash")  # type: ignore[attr-defined]

    open_route(page, "/vms")
    row = page.get_by_role("row", name=re.compile("web2"))  # type: ignore[attr-defined]
    assert "active" in row.inner_text()
    assert DEMO_PLAN_HOURLY in row.inner_text()
    screenshot(page, "vms")

    stack.cli("bill", "--hour", billable_hour(started))
    open_route(page, "/billing")
    charge = page.get_by_role("row", name=re.compile(r"VM web2, plan Small 1 GB"))  # type: ignore[attr-defined]
    assert "-0.0075 USD" in charge.inner_text()
    today = started.strftime("%Y-%m-%d")
    bar_title = page.locator("svg.chart rect.bar title", has_text=today).text_content()  # type: ignore[attr-defined]
    assert bar_title == f"{today}: 0.0075 USD"
    page.get_by_text("Charges this month").scroll_into_view_if_needed()  # type: ignore[attr-defined]
    screenshot(page, "ledger")

    with page.expect_download() as download:  # type: ignore[attr-defined]
        page.get_by_role("link", name="Download CSV").click()  # type: ignore[attr-defined]
    statement = open(download.value.path(), encoding="utf-8").read()
    assert download.value.suggested_filename == f"lobster-statement-{started.strftime('%Y-%m')}.csv"
    assert "VM web2, plan Small 1 GB" in statement
    assert "-0.0075" in statement

    open_route(page, vm_hash.removeprefix("#"))
    page.get_by_role("button", name="Delete VM").click()  # type: ignore[attr-defined]
    dialog = page.get_by_role("dialog")  # type: ignore[attr-defined]
    assert 'Delete the VM "web2"?' in dialog.inner_text()
    dialog.get_by_role("button", name="Delete VM").click()
    page.wait_for_url(re.compile(r"#/vms$"))  # type: ignore[attr-defined]
    page.get_by_text("You have no VMs yet.").wait_for()  # type: ignore[attr-defined]
    assert page.get_by_role("link", name="web2").count() == 0  # type: ignore[attr-defined]


def test_create_without_credit_shows_error(page: object, stack: Stack) -> None:
    email = verified_customer(stack, "no-credit")
    log_in(page, email, "/vms/new")

    create_vm(page, "broke1")

    error = page.locator(".form-error")  # type: ignore[attr-defined]
    error.wait_for()
    assert error.inner_text() == "creating a VM needs at least 1.00 of credit"
    assert page.get_by_role("link", name="Add credit").is_visible()  # type: ignore[attr-defined]
    assert page.evaluate("location.hash") == "#/vms/new"  # type: ignore[attr-defined]


def test_private_image_url_error_beside_field(page: object, stack: Stack) -> None:
    email = verified_customer(stack, "image-url")
    log_in(page, email, "/images")

    page.get_by_label("Name").fill("custom")  # type: ignore[attr-defined]
    page.get_by_label("Image URL").fill("http://10.0.0.1/x.img")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Fetch image").click()  # type: ignore[attr-defined]

    url_error = page.locator('[data-error-for="url"]')  # type: ignore[attr-defined]
    url_error.wait_for()
    assert "10.0.0.1 is a private address" in url_error.inner_text()
    assert page.get_by_label("Image URL").get_attribute("aria-invalid") == "true"  # type: ignore[attr-defined]
    screenshot(page, "images")


def test_create_page_fits_phone_width(page: object, stack: Stack) -> None:
    email = verified_customer(stack, "phone")
    page.set_viewport_size(PHONE)  # type: ignore[attr-defined]
    log_in(page, email, "/vms/new")

    page.get_by_text(DEMO_PLAN, exact=True).wait_for()  # type: ignore[attr-defined]
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")  # type: ignore[attr-defined]
    assert overflow == 0
    screenshot(page, "vm-create-phone")


def test_malformed_amount_rejected_in_page(page: object, stack: Stack) -> None:
    email = verified_customer(stack, "amount")
    log_in(page, email, "/billing")
    payment_posts: list[str] = []
    page.on("request", lambda request: payment_posts.append(request.url) if request.method == "POST" else None)  # type: ignore[attr-defined]

    add_demo_credit(page, "5.001")

    amount_error = page.locator('[data-error-for="amount"]')  # type: ignore[attr-defined]
    amount_error.wait_for()
    assert "whole cents" in amount_error.inner_text()
    assert payment_posts == []
