"""Browser fixtures: one served product per test process, and Debian's Chromium driven headless
by Playwright. Every browser test runs on the same pytest-xdist worker (group "browser"), so a
run starts one Chromium and one app server.

Screenshots go to build/screenshots/, which the test run keeps as its artifacts.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import ROOT, Stack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT_DIR = ROOT / "build" / "screenshots"
# Without the background-networking flags Chromium keeps trying to reach Google's hosts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
ACTION_TIMEOUT_MILLISECONDS = 15_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(scope="session")
def stack(tables: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    served = Stack(tmp_path_factory.mktemp("mail"))
    served.start()
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(autouse=True)
def fresh_rate_limits(request: pytest.FixtureRequest) -> None:
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").reset_rate_limits()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed; `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


# Chromium logs every 4xx response to fetch() as a console error; the panel expects those (an
# anonymous visitor's 401, a form's 400) and shows them on the page.
EXPECTED_CONSOLE_ERROR = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")


@pytest.fixture
def page_errors() -> list[str]:
    """Script errors and console errors of the test's page; the test fails if any remain."""
    return []


@pytest.fixture
def page(browser: object, stack: Stack, page_errors: list[str]) -> Iterator[object]:
    """A fresh browser context (no cookies) at desktop width, failing the test on any page error."""
    context = browser.new_context(viewport=DESKTOP, base_url=stack.url)  # type: ignore[attr-defined]
    context.set_default_timeout(ACTION_TIMEOUT_MILLISECONDS)
    opened = context.new_page()
    opened.on("pageerror", lambda error: page_errors.append(str(error)))
    opened.on("console", lambda message: _record_console(page_errors, message))
    yield opened
    context.close()
    assert not page_errors, f"the page reported errors: {page_errors}"


def _record_console(errors: list[str], message: object) -> None:
    text = message.text  # type: ignore[attr-defined]
    if message.type == "error" and not EXPECTED_CONSOLE_ERROR.match(text):  # type: ignore[attr-defined]
        errors.append(text)


def screenshot(page: object, name: str) -> Path:
    """Save a full-page screenshot as a test artifact and return its path."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def open_route(page: object, hash_path: str) -> None:
    """Open `hash_path` through the panel's router and wait until its page has replaced the previous one."""
    page.evaluate("document.querySelector('main h1')?.setAttribute('data-left', '')")  # type: ignore[attr-defined]
    page.goto("/#" + hash_path)  # type: ignore[attr-defined]
    page.locator("main h1:not([data-left])").wait_for()  # type: ignore[attr-defined]


def log_in_with_cookie(page: object, email: str, password: str) -> int:
    """Log in from the panel's origin with a cookie session, as its login form does, and return the status."""
    page.goto("/")  # type: ignore[attr-defined]
    return page.evaluate(  # type: ignore[attr-defined]
        """async ([email, password]) => {
            const reply = await fetch("v1/auth/login", {method: "POST", headers: {"Content-Type": "application/json"},
                body: JSON.stringify({email, password, session: "cookie"})});
            return reply.status;
        }""",
        [email, password],
    )
