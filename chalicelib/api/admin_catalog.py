"""Admin routes for what customers choose from and read: plans, regions, public images,
announcements and support tickets. Access and auditing work as in chalicelib.api.admin.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from chalice import Blueprint

from chalicelib import audit
from chalicelib.admin import catalog
from chalicelib.api.admin import admin_event, audit_read, require_admin
from chalicelib.api.http import json_response, request_body, request_query, route
from chalicelib.api.schema import Field, Schema
from chalicelib.billing.hours import price_at
from chalicelib.clock import now, parse_iso
from chalicelib.errors import InvalidRequest
from chalicelib.models.audit import AuditEvent
from chalicelib.models.catalog import KIND_IMAGE, KIND_PLAN, KIND_REGION, CatalogItem
from chalicelib.money import InvalidAmount, format_micros, money_json, parse_micros

blueprint = Blueprint(__name__)

Result = TypeVar("Result")

# Image ids may hold dots ("ubuntu-24.04"); plan and region ids follow chalicelib.regions.
IMAGE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
MAX_ID_LENGTH = 64

PLAN_FIELDS = (
    Field("name", max_length=catalog.MAX_NAME_LENGTH, description="Shown to customers"),
    Field("ram_mb", kind=int, description="Memory in MiB"),
    Field("vcpus", kind=int, description="Virtual CPUs"),
    Field("disk_gb", kind=int, description="Disk in GB"),
    Field("bandwidth_gib", kind=int, description="Monthly bandwidth pool in GiB"),
)
CREATE_PLAN = Schema(
    "AdminCreatePlan",
    (
        Field("id", max_length=MAX_ID_LENGTH, description="Plan id customers send, e.g. \"s1\""),
        *PLAN_FIELDS,
        Field("price_hourly", max_length=32, description="Decimal price per hour, e.g. \"0.0075\""),
        Field("enabled", kind=bool, required=False, description="Offer it at once; default false"),
    ),
)
EDIT_PLAN = Schema("AdminEditPlan", tuple(Field(field.name, kind=field.kind, required=False, max_length=field.max_length) for field in PLAN_FIELDS))
PLAN_PRICE = Schema(
    "AdminPlanPrice",
    (
        Field("price_hourly", max_length=32, description="Decimal price per hour"),
        Field("effective_from", required=False, max_length=40, description="ISO 8601 time with zone; default now"),
    ),
)
PLAN_REGION = Schema("AdminPlanRegion", (Field("backend_id", max_length=catalog.MAX_BACKEND_ID_LENGTH, description="The provider's plan id"),))
ADD_REGION = Schema(
    "AdminAddRegion",
    (
        Field("id", max_length=MAX_ID_LENGTH),
        Field("name", max_length=100),
        Field("backend", max_length=32, description="Backend type, e.g. \"digitalocean\""),
        Field("settings", kind=dict, required=False, description="The backend's settings, such as its API URL; never a secret"),
        Field("secret_ref", required=False, max_length=512, description="file:, ssm: or secretsmanager: reference"),
    ),
)
ADD_IMAGE = Schema(
    "AdminAddImage",
    (
        Field("id", max_length=MAX_ID_LENGTH),
        Field("name", max_length=catalog.MAX_NAME_LENGTH),
        Field("region", max_length=MAX_ID_LENGTH),
        Field("backend_id", max_length=catalog.MAX_BACKEND_ID_LENGTH, description="The provider's image id"),
        Field("enabled", kind=bool, required=False, description="Offer it at once; default false"),
    ),
)
ANNOUNCEMENT = Schema(
    "AdminAnnouncement",
    (
        Field("title", max_length=200),
        Field("body", max_length=4000),
        Field("level", required=False, max_length=16, description="info, maintenance or incident"),
        Field("starts_at", required=False, max_length=40, description="ISO 8601 time with zone; default now"),
        Field("ends_at", required=False, max_length=40, description="ISO 8601 time with zone; default never"),
    ),
)
TICKET_REPLY = Schema("AdminTicketReply", (Field("message", max_length=65536),))
TICKET_QUERY = Schema("AdminTicketQuery", (Field("status", required=False, max_length=16, description="Ticket status; default open"),))


def admin_route(path: str, methods: list[str], **documented: Any) -> Any:
    """Register an admin route; `documented` passes body, query and status on to `route`."""
    return route(blueprint, path, methods, session_only=True, **documented)


def parse_time(text: str | None, field: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        raise InvalidRequest(f"{field} must be an ISO 8601 time with a zone, such as 2026-12-04T10:00:00Z", field=field) from None


def parse_price(text: str) -> int:
    try:
        return parse_micros(text)
    except InvalidAmount as error:
        raise InvalidRequest(str(error), field="price_hourly") from None


def run_audited(event: AuditEvent, change: Callable[[], Result]) -> Result | None:
    """Make a change that another module owns, then store its event.

    Returns None without changing anything when the event exists: the same request
    (same Idempotency-Key) made this change before.
    """
    if audit.get_event(event.event_id) is not None:
        return None
    result = change()
    audit.save_event(event)
    return result


def _check_image_id(image_id: str) -> str:
    if not image_id or len(image_id) > MAX_ID_LENGTH or not IMAGE_ID_PATTERN.match(image_id):
        raise InvalidRequest(f"id must be 1 to {MAX_ID_LENGTH} lower-case letters, digits, dots or hyphens", field="id")
    return image_id


# Plans.


def plan_json(plan: CatalogItem) -> dict[str, Any]:
    moment = now()
    prices: list[list[Any]] = plan.prices  # type: ignore[assignment]
    return {
        "id": plan.item_id,
        "name": plan.name,
        "enabled": plan.enabled,
        "ram_mb": plan.ram_mb,
        "vcpus": plan.vcpus,
        "disk_gb": plan.disk_gb,
        "bandwidth_gib": plan.bandwidth_gib,
        "price_hourly": money_json(price_at(plan.prices, moment)) if plan.prices else None,
        "prices": [{"effective_from": start, "price_hourly": money_json(int(micros))} for start, micros in prices],
        "region_ids": plan.region_ids,
    }


@admin_route("/v1/admin/plans", ["GET"])
def list_plans() -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    plans = catalog.list_items(KIND_PLAN)
    audit_read(request, admin, "plan.list", "plan:*")
    return json_response({"plans": [plan_json(plan) for plan in plans]})


@admin_route("/v1/admin/plans", ["POST"], body=CREATE_PLAN, status=201)
def create_plan() -> object:
    from chalicelib.regions import check_id

    request = blueprint.current_request
    admin = require_admin(request)
    body = request_body()
    plan_id = check_id(body["id"], "id")
    price = parse_price(body["price_hourly"])
    details = {"price_hourly": format_micros(price), **{field.name: body[field.name] for field in PLAN_FIELDS}}
    event = admin_event(request, admin, "plan.create", f"plan:{plan_id}", details)
    plan = catalog.create_plan(plan_id, body, price, body.get("enabled", False), event)
    return json_response(plan_json(plan), 201)


@admin_route("/v1/admin/plans/{plan_id}", ["PATCH"], body=EDIT_PLAN)
def edit_plan(plan_id: str) -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    body = request_body()
    event = admin_event(request, admin, "plan.edit", f"plan:{plan_id}", body)
    return json_response(plan_json(catalog.edit_plan_specs(plan_id, body, event)))


@admin_route("/v1/admin/plans/{plan_id}/prices", ["POST"], body=PLAN_PRICE, status=201)
def add_plan_price(plan_id: str) -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    body = request_body()
    price = parse_price(body["price_hourly"])
    effective_from = parse_time(body.get("effective_from"), "effective_from")
    details = {"price_hourly": format_micros(price), "effective_from": body.get("effective_from")}
    event = admin_event(request, admin, "plan.price", f"plan:{plan_id}", details)
    return json_response(plan_json(catalog.set_plan_price(plan_id, price, effective_from, event)), 201)


@admin_route("/v1/admin/plans/{plan_id}/regions/{region_id}", ["PUT"], body=PLAN_REGION)
def set_plan_region(plan_id: str, region_id: str) -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    backend_id = request_body()["backend_id"]
    event = admin_event(request, admin, "plan.region_set", f"plan:{plan_id}", {"region": region_id, "backend_id": backend_id})
    return json_response(plan_json(catalog.set_plan_region(plan_id, region_id, backend_id, event)))


@admin_route("/v1/admin/plans/{plan_id}/regions/{region_id}", ["DELETE"])
def remove_plan_region(plan_id: str, region_id: str) -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    event = admin_event(request, admin, "plan.region_removed", f"plan:{plan_id}", {"region": region_id})
    return json_response(plan_json(catalog.set_plan_region(plan_id, region_id, None, event)))


@admin_route("/v1/admin/plans/{plan_id}/enable", ["POST"])
def enable_plan(plan_id: str) -> object:
    return _set_enabled(KIND_PLAN, plan_id, True, plan_json)


@admin_route("/v1/admin/plans/{plan_id}/disable", ["POST"])
def disable_plan(plan_id: str) -> object:
    return _set_enabled(KIND_PLAN, plan_id, False, plan_json)


def _set_enabled(kind: str, item_id: str, enabled: bool, render: Callable[[CatalogItem], dict[str, Any]]) -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    event = admin_event(request, admin, f"{kind}.{'enable' if enabled else 'disable'}", f"{kind}:{item_id}")
    return json_response(render(catalog.set_enabled(kind, item_id, enabled, event)))


# Regions.


def region_json(region: CatalogItem) -> dict[str, Any]:
    """Return a region without secrets: its settings contain none, and `secret_ref` only names one."""
    return {
        "id": region.item_id,
        "name": region.name,
        "enabled": region.enabled,
        "backend": region.backend,
        "settings": region.settings,
        "secret_ref": region.secret_ref,
    }


@admin_route("/v1/admin/regions", ["GET"])
def list_regions() -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    regions = catalog.list_items(KIND_REGION)
    audit_read(request, admin, "region.list", "region:*")
    return json_response({"regions": [region_json(region) for region in regions]})


@admin_route("/v1/admin/regions", ["POST"], body=ADD_REGION, status=201)
def add_region() -> object:
    """Store a region, disabled; enabling it checks that its backend can be built."""
    from chalicelib import regions

    request = blueprint.current_request
    admin = require_admin(request)
    body = request_body()
    settings = body.get("settings", {})
    region_id = body["id"]
    event = admin_event(request, admin, "region.add", f"region:{region_id}", {"backend": body["backend"], "secret_ref": body.get("secret_ref")})
    run_audited(event, lambda: regions.add_region(region_id, body["name"], body["backend"], settings, body.get("secret_ref")))
    return json_response(region_json(catalog.get_item(KIND_REGION, region_id)), 201)


@admin_route("/v1/admin/regions/{region_id}/enable", ["POST"])
def enable_region(region_id: str) -> object:
    return _set_region_enabled(region_id, True)


@admin_route("/v1/admin/regions/{region_id}/disable", ["POST"])
def disable_region(region_id: str) -> object:
    """Stop offering a region for new VMs; its VMs keep running and being billed."""
    return _set_region_enabled(region_id, False)


def _set_region_enabled(region_id: str, enabled: bool) -> object:
    from chalicelib import regions

    request = blueprint.current_request
    admin = require_admin(request)
    event = admin_event(request, admin, f"region.{'enable' if enabled else 'disable'}", f"region:{region_id}")
    run_audited(event, lambda: regions.set_region_enabled(region_id, enabled))
    return json_response(region_json(catalog.get_item(KIND_REGION, region_id)))


@admin_route("/v1/admin/regions/{region_id}/import", ["POST"])
def import_region_catalog(region_id: str) -> object:
    """Import the provider's plans and stock images of a region, stored disabled."""
    from chalicelib import regions

    request = blueprint.current_request
    admin = require_admin(request)
    event = admin_event(request, admin, "region.import", f"region:{region_id}")

    def run_imports() -> dict[str, Any]:
        plans, images = regions.import_plans(region_id), regions.import_images(region_id)
        return {"plans_added": plans.added, "plans_linked": plans.linked, "images_added": images.added}

    result = run_audited(event, run_imports)
    return json_response(result or {"repeated": True})


# Public images.


def image_json(image: CatalogItem) -> dict[str, Any]:
    return {"id": image.item_id, "name": image.name, "enabled": image.enabled, "region": image.region, "backend_id": image.backend_id}


@admin_route("/v1/admin/images", ["GET"])
def list_images() -> object:
    request = blueprint.current_request
    admin = require_admin(request)
    images = catalog.list_items(KIND_IMAGE)
    audit_read(request, admin, "image.list", "image:*")
    return json_response({"images": [image_json(image) for image in images]})


@admin_route("/v1/admin/images", ["POST"], body=ADD_IMAGE, status=201)
def add_image() -> object:
    from chalicelib.regions import check_id

    request = blueprint.current_request
    admin = require_admin(request)
    body = request_body()
    image_id = _check_image_id(body["id"].strip())
    region_id = check_id(body["region"], "region")
    event = admin_event(request, admin, "image.add", f"image:{image_id}", {"region": region_id, "backend_id": body["backend_id"]})
    image = catalog.add_image(image_id, body["name"], region_id, body["backend_id"], body.get("enabled", False), event)
    return json_response(image_json(image), 201)


@admin_route("/v1/admin/images/{image_id}/enable", ["POST"])
def enable_image(image_id: str) -> object:
    return _set_enabled(KIND_IMAGE, image_id, True, image_json)


@admin_route("/v1/admin/images/{image_id}/disable", ["POST"])
def disable_image(image_id: str) -> object:
    return _set_enabled(KIND_IMAGE, image_id, False, image_json)


# Announcements.


@admin_route("/v1/admin/announcements", ["GET"])
def list_announcements() -> object:
    from chalicelib.support import announcements

    request = blueprint.current_request
    admin = require_admin(request)
    items = announcements.list_announcements()
    audit_read(request, admin, "announcement.list", "announcement:*")
    return json_response({"announcements": [_announcement_json(item) for item in items]})


@admin_route("/v1/admin/announcements", ["POST"], body=ANNOUNCEMENT, status=201)
def create_announcement() -> object:
    from chalicelib.support import announcements

    request = blueprint.current_request
    admin = require_admin(request)
    body = request_body()
    starts_at, ends_at = parse_time(body.get("starts_at"), "starts_at"), parse_time(body.get("ends_at"), "ends_at")
    event = admin_event(request, admin, "announcement.create", "announcement:new", {"title": body["title"]})
    item = run_audited(
        event,
        lambda: announcements.create_announcement(
            body["title"], body["body"], admin.account_id, level=body.get("level", "info"), starts_at=starts_at, ends_at=ends_at
        ),
    )
    return json_response(_announcement_json(item) if item is not None else {"repeated": True}, 201)


@admin_route("/v1/admin/announcements/{announcement_id}", ["DELETE"])
def delete_announcement(announcement_id: str) -> object:
    """Withdraw an announcement: customers stop seeing it at once; staff still list it."""
    from chalicelib.support import announcements

    request = blueprint.current_request
    admin = require_admin(request)
    event = admin_event(request, admin, "announcement.delete", f"announcement:{announcement_id}")
    run_audited(event, lambda: announcements.withdraw_announcement(announcement_id))
    return json_response({"id": announcement_id, "withdrawn": True})


def _announcement_json(item: Any) -> dict[str, Any]:
    from chalicelib.support.announcements import announcement_json

    return {**announcement_json(item), "created_by": item.created_by, "created_at": item.created_at, "withdrawn_at": item.withdrawn_at}


# Tickets.


@admin_route("/v1/admin/tickets", ["GET"], query=TICKET_QUERY)
def list_tickets() -> object:
    """List every account's tickets with `status` (default open), most recently active first."""
    from chalicelib.support import tickets

    request = blueprint.current_request
    admin = require_admin(request)
    status = request_query().get("status", "open")
    found = tickets.list_tickets_by_status(status)
    audit_read(request, admin, "ticket.list", "ticket:*", {"status": status})
    return json_response({"tickets": [{**tickets.ticket_json(ticket), "account_id": ticket.account_id} for ticket in found]})


@admin_route("/v1/admin/tickets/{ticket_id}", ["GET"])
def view_ticket(ticket_id: str) -> object:
    from chalicelib.support import tickets

    request = blueprint.current_request
    admin = require_admin(request)
    ticket = tickets.find_ticket(ticket_id)
    messages = [
        {**tickets.message_json(message), "author_account_id": message.author_account_id} for message in tickets.list_messages(ticket_id)
    ]
    audit_read(request, admin, "ticket.view", f"ticket:{ticket_id}")
    return json_response({**tickets.ticket_json(ticket), "account_id": ticket.account_id, "messages": messages})


@admin_route("/v1/admin/tickets/{ticket_id}/reply", ["POST"], body=TICKET_REPLY, status=201)
def reply_ticket(ticket_id: str) -> object:
    from chalicelib.support import tickets

    request = blueprint.current_request
    admin = require_admin(request)
    message = request_body()["message"]
    event = admin_event(request, admin, "ticket.reply", f"ticket:{ticket_id}")
    run_audited(event, lambda: tickets.add_staff_reply(ticket_id, admin.account_id, message))
    return json_response(tickets.ticket_json(tickets.find_ticket(ticket_id)), 201)


@admin_route("/v1/admin/tickets/{ticket_id}/close", ["POST"])
def close_ticket(ticket_id: str) -> object:
    from chalicelib.support import tickets

    request = blueprint.current_request
    admin = require_admin(request)
    event = admin_event(request, admin, "ticket.close", f"ticket:{ticket_id}")
    run_audited(event, lambda: tickets.close_ticket(tickets.find_ticket(ticket_id)))
    return json_response(tickets.ticket_json(tickets.find_ticket(ticket_id)))
