"""Announcements that staff publish to every customer, such as planned maintenance.

An announcement is shown from `starts_at` until `ends_at` (open-ended when unset) unless
it was withdrawn. All announcements share one partition, because there are few of them.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from pynamodb.exceptions import DoesNotExist

from chalicelib.clock import as_utc, iso, now, parse_iso
from chalicelib.errors import InvalidRequest, NotFound
from chalicelib.log import logger
from chalicelib.models.support import ANNOUNCEMENT_PARTITION, Announcement

ANNOUNCEMENT_ID_BYTES = 6
MAX_TITLE_LENGTH = 200
MAX_BODY_LENGTH = 4000
LEVELS = ("info", "maintenance", "incident")


def create_announcement(
    title: str,
    body: str,
    created_by: str,
    *,
    level: str = "info",
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> Announcement:
    """Publish an announcement, shown from `starts_at` (default now) until `ends_at`."""
    title = title.strip()
    if not title or len(title) > MAX_TITLE_LENGTH or not title.isprintable():
        raise InvalidRequest(f"title must be 1 to {MAX_TITLE_LENGTH} characters on one line", field="title")
    body = body.strip()
    if not body or len(body) > MAX_BODY_LENGTH:
        raise InvalidRequest(f"body must be 1 to {MAX_BODY_LENGTH} characters", field="body")
    if level not in LEVELS:
        raise InvalidRequest(f"level must be one of {', '.join(LEVELS)}", field="level")
    start = as_utc(starts_at) if starts_at is not None else now()
    end = as_utc(ends_at) if ends_at is not None else None
    if end is not None and end <= start:
        raise InvalidRequest("ends_at must be later than starts_at", field="ends_at")

    announcement = Announcement(
        ANNOUNCEMENT_PARTITION,
        "ann_" + secrets.token_hex(ANNOUNCEMENT_ID_BYTES),
        title=title,
        body=body,
        level=level,
        starts_at=iso(start),
        ends_at=iso(end) if end is not None else None,
        created_by=created_by,
        created_at=iso(now()),
    )
    announcement.save(condition=Announcement.announcement_id.does_not_exist())
    logger.info("announcement_created", extra={"announcement_id": announcement.announcement_id, "created_by": created_by})
    return announcement


def withdraw_announcement(announcement_id: str) -> Announcement:
    """Stop showing an announcement at once; withdrawing twice changes nothing."""
    try:
        announcement = Announcement.get(ANNOUNCEMENT_PARTITION, announcement_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"announcement {announcement_id[:64]!r} not found", field="announcement_id") from None
    if announcement.withdrawn_at is None:
        announcement.update(actions=[Announcement.withdrawn_at.set(iso(now()))])
        logger.info("announcement_withdrawn", extra={"announcement_id": announcement_id})
    return announcement


def list_announcements() -> list[Announcement]:
    """List every announcement, newest start first, for staff."""
    items = Announcement.query(ANNOUNCEMENT_PARTITION, consistent_read=True)
    return sorted(items, key=lambda item: (item.starts_at, item.announcement_id), reverse=True)


def active_announcements(moment: datetime | None = None) -> list[Announcement]:
    """Return the announcements shown at `moment` (default now), newest start first."""
    moment = moment or now()
    return [item for item in list_announcements() if _is_shown(item, moment)]


def _is_shown(item: Announcement, moment: datetime) -> bool:
    if item.withdrawn_at is not None or parse_iso(item.starts_at) > moment:
        return False
    return item.ends_at is None or parse_iso(item.ends_at) > moment


def announcement_json(item: Announcement) -> dict[str, object]:
    return {
        "id": item.announcement_id,
        "title": item.title,
        "body": item.body,
        "level": item.level,
        "starts_at": item.starts_at,
        "ends_at": item.ends_at,
    }
