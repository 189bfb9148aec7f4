"""Failures that the Schemathesis run in tests/test_fuzz_api.py found, each pinned by a
focused test so a fix cannot quietly come undone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app import app
from chalicelib import clock
from chalicelib.admin.users import create_admin
from tests.api_calls import PASSWORD, ApiCaller, data_item_count

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

T0 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("region", ["", "   ", "Not A Region"])
def test_admin_image_with_invalid_region_is_rejected(region: str) -> None:
    clock.set_time(T0)
    api = ApiCaller(app)
    create_admin("admin@example.com", PASSWORD)
    token = api.log_in("admin@example.com")
    items = data_item_count()

    body = {"id": "fuzz-image", "name": "Fuzz", "region": region, "backend_id": "debian-12-x64"}
    reply = api.call("POST", "/v1/admin/images", body, token)

    assert reply.status == 400, reply.body
    assert reply.error_field == "region"
    assert data_item_count() == items


def test_admin_image_in_unknown_region_is_not_found() -> None:
    clock.set_time(T0)
    api = ApiCaller(app)
    create_admin("admin@example.com", PASSWORD)
    token = api.log_in("admin@example.com")

    body = {"id": "fuzz-image", "name": "Fuzz", "region": "nowhere", "backend_id": "debian-12-x64"}
    reply = api.call("POST", "/v1/admin/images", body, token)

    assert reply.status == 404, reply.body


@pytest.mark.parametrize("text", ["Upgrade\u202eelif.exe", "nul\x00byte", "bell\x07"])
def test_control_characters_rejected(text: str) -> None:
    clock.set_time(T0)
    api = ApiCaller(app)
    create_admin("admin@example.com", PASSWORD)
    token = api.log_in("admin@example.com")
    items = data_item_count()

    reply = api.call("POST", "/v1/admin/announcements", {"title": text, "body": "Friday night."}, token)

    assert reply.status == 400, reply.body
    assert reply.error_field == "title"
    assert data_item_count() == items


def test_text_keeps_line_breaks_tabs_and_emoji() -> None:
    clock.set_time(T0)
    api = ApiCaller(app)
    create_admin("admin@example.com", PASSWORD)
    token = api.log_in("admin@example.com")

    reply = api.call("POST", "/v1/admin/announcements", {"title": "Wartung 🛠", "body": "Line one\n\tLine two"}, token)

    assert reply.status == 201, reply.body
