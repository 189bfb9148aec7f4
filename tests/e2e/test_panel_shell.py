"""The panel's shell in Chromium: its session cookie is out of reach of page scripts, and
its Content Security Policy refuses inline script."""

from __future__ import annotations

from tests.api_calls import PASSWORD
from tests.e2e.conftest import log_in_with_cookie
from tests.e2e.stack import Stack


def test_only_csrf_cookie_readable_by_scripts(page: object, stack: Stack) -> None:
    stack.create_admin("shell@lobster.test", PASSWORD)
    status = log_in_with_cookie(page, "shell@lobster.test", PASSWORD)

    assert status == 200
    readable = page.evaluate("document.cookie")  # type: ignore[attr-defined]
    assert "lobster_csrf=" in readable
    assert "lobster_session" not in readable
    stored = {cookie["name"]: cookie for cookie in page.context.cookies()}  # type: ignore[attr-defined]
    assert stored["lobster_session"]["httpOnly"] and stored["lobster_session"]["secure"]
    assert stored["lobster_session"]["sameSite"] == "Strict"


def test_csp_blocks_inline_script(page: object, page_errors: list[str]) -> None:
    page.goto("/")  # type: ignore[attr-defined]

    ran = page.evaluate(  # type: ignore[attr-defined]
        """() => {
            window.__inlineRan = false;
            const script = document.createElement("script");
            script.textContent = "window.__inlineRan = true";
            document.body.append(script);
            return window.__inlineRan;
        }"""
    )

    assert ran is False
    assert any("Content Security Policy" in error for error in page_errors)
    page_errors.clear()
