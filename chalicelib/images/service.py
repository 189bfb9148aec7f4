"""Customer images: fetched from a URL or snapshotted from a VM, billed per GB-hour.

An image item is written, in the billing index, before the provider is asked for it, and
removed again if the provider refuses. It stays "pending" with size 0, which costs
nothing, until the backend reports it active with its size. Deleting sets `deleted_at`, which ends storage billing after that
hour; the item stays in the billing index until the monthly rollover, as VMs do.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib.backends.base import ImageState
from chalicelib.billing.shards import shard_for
from chalicelib.catalog import backend_for, load_catalog
from chalicelib.clock import iso, now, parse_iso
from chalicelib.config import settings
from chalicelib.errors import InsufficientCredit, InvalidRequest, LimitReached, LobsterError, NotFound, NotSupported
from chalicelib.images.urls import check_image_url
from chalicelib.log import logger
from chalicelib.models.accounts import Account
from chalicelib.models.images import Image
from chalicelib.models.vms import Vm
from chalicelib.money import format_micros, money_json, round_half_up

IMAGE_ID_BYTES = 6
IMAGE_ID_PATTERN = re.compile(r"^img_[0-9a-f]{12}$")
MAX_NAME_LENGTH = 64
MAX_IMAGES_PER_ACCOUNT = 20
BYTES_PER_GB = 10**9
# A pending image without a provider id this old lost its create call, so it is failed.
ORPHAN_AFTER = timedelta(hours=1)
LIVE_STATES = ("pending", "active", "deleting")


def fetch_image(account: Account, region_id: str, name: str, url: str) -> Image:
    """Check the request, record the image, then ask the region's backend to fetch it."""
    load_catalog().region(region_id)
    name = validate_image_name(name)
    check_image_url(url)
    backend = backend_for(region_id)
    if not backend.supports("image_fetch"):
        raise NotSupported(f"fetching an image from a URL is not supported in region {region_id}")
    _check_credit_and_count(account, "fetching an image")

    image = _new_image(account.account_id, region_id, name, source_vm=None)
    try:
        backend_id = backend.fetch_image(url, name)
    except LobsterError:
        # NOTE: a call that fails after the provider acted (a read timeout) leaves a
        # provider image that Lobster no longer knows and never bills.
        image.delete()
        raise
    image.update(actions=[Image.backend_id.set(backend_id)])
    logger.info("image_fetch_started", extra={"account_id": account.account_id, "image_id": image.image_id, "region": region_id})
    return image


def snapshot_vm(account: Account, vm: Vm, name: str) -> Image:
    """Record a snapshot image of an active VM and ask its backend to take it."""
    from chalicelib.vms.actions import require_action

    name = validate_image_name(name)
    backend = require_action(vm, "snapshot", "snapshot")
    _check_credit_and_count(account, "taking a snapshot")

    image = _new_image(account.account_id, vm.region, name, source_vm=vm.vm_id)
    try:
        backend_id = backend.snapshot_vm(vm.backend_id or "", name)
    except LobsterError:
        image.delete()
        raise
    image.update(actions=[Image.backend_id.set(backend_id)])
    logger.info("snapshot_started", extra={"account_id": account.account_id, "image_id": image.image_id, "vm_id": vm.vm_id})
    return image


def validate_image_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidRequest(f"name must be 1 to {MAX_NAME_LENGTH} printable characters", field="name")
    return name


def _check_credit_and_count(account: Account, what: str) -> None:
    minimum = settings().minimum_credit_micros
    if account.balance_micros < minimum:
        raise InsufficientCredit(f"{what} needs at least {format_micros(minimum)} of credit")
    if sum(1 for image in Image.query(account.account_id) if image.state in LIVE_STATES) >= MAX_IMAGES_PER_ACCOUNT:
        raise LimitReached(f"an account may keep at most {MAX_IMAGES_PER_ACCOUNT} images; delete one first")


def _new_image(account_id: str, region_id: str, name: str, source_vm: str | None) -> Image:
    image = Image(
        account_id,
        "img_" + secrets.token_hex(IMAGE_ID_BYTES),
        name=name,
        region=region_id,
        state="pending",
        size_bytes=0,
        created_at=iso(now()),
        source_vm=source_vm,
        billing_shard=shard_for(account_id),
    )
    image.billing_sort = f"{account_id}#{image.image_id}"
    image.save(condition=Image.image_id.does_not_exist())
    return image


def list_images(account_id: str) -> list[Image]:
    images = [image for image in Image.query(account_id, consistent_read=True) if image.state != "deleted"]
    return sorted(images, key=lambda image: (image.created_at, image.image_id))


def get_image(account_id: str, image_id: str) -> Image:
    if not IMAGE_ID_PATTERN.match(image_id):
        raise NotFound(f"image {image_id[:64]!r} not found", field="image_id")
    try:
        return Image.get(account_id, image_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"image {image_id!r} not found", field="image_id") from None


def image_backend_id(account_id: str, region_id: str, image_id: str, field: str = "image") -> str:
    """Return the backend id of an image a VM in `region_id` may use: a public image of
    the catalog or one of the account's own active images in that region."""
    public = load_catalog().images.get(image_id)
    if public is not None and public.enabled and public.region == region_id:
        return public.backend_id or ""
    if IMAGE_ID_PATTERN.match(image_id):
        try:
            own = Image.get(account_id, image_id, consistent_read=True)
        except DoesNotExist:
            own = None
        if own is not None and own.state == "active" and own.region == region_id and own.backend_id:
            return own.backend_id
    raise InvalidRequest(f"image {image_id[:64]!r} does not exist or is not ready in region {region_id!r}", field=field)


def delete_image(image: Image) -> Image:
    """Stop billing the image after this hour, then delete it on the backend.

    If the backend delete fails the image stays "deleting" and `refresh_pending_images`
    retries it, so no provider image is forgotten while it still exists.
    """
    if image.state == "deleted":
        return image
    if image.deleted_at is None:
        try:
            image.update(
                actions=[Image.deleted_at.set(iso(now())), Image.state.set("deleting")],
                condition=Image.deleted_at.does_not_exist(),
            )
        except UpdateError:
            image.refresh(consistent_read=True)
    return retry_backend_delete(image)


def retry_backend_delete(image: Image) -> Image:
    if image.backend_id is None:
        image.update(actions=[Image.state.set("deleted")])
        return image
    try:
        backend_for(image.region).delete_image(image.backend_id)
    except NotFound:
        pass
    except (LobsterError, LookupError) as error:
        logger.error("image_delete_failed", extra={"image_id": image.image_id, "region": image.region, "error": str(error)})
        return image
    image.update(actions=[Image.state.set("deleted")])
    logger.info("image_deleted", extra={"account_id": image.account_id, "image_id": image.image_id})
    return image


def refresh_pending_images(account_id: str, images: list[Image] | None = None) -> list[Image]:
    """Bring the account's pending images up to date and retry pending deletes.

    A pending image becomes active with the size the backend reports, or fails. Pass the
    account's `images` to update those objects in place (the hourly run's copies); the
    images are read from the table otherwise. Returns the images it looked at.
    """
    if images is None:
        images = list(Image.query(account_id, consistent_read=True))
    for image in images:
        if image.state == "pending":
            _refresh_pending(image)
        elif image.state == "deleting":
            retry_backend_delete(image)
    return images


def _refresh_pending(image: Image) -> None:
    if image.backend_id is None:
        if now() - parse_iso(image.created_at) > ORPHAN_AFTER:
            _mark_failed(image, "the provider never confirmed the image")
        return
    try:
        info = backend_for(image.region).get_image(image.backend_id)
    except NotFound:
        _mark_failed(image, "the provider no longer has the image")
        return
    except (LobsterError, LookupError) as error:
        logger.warning("image_refresh_failed", extra={"image_id": image.image_id, "error": str(error)})
        return

    if info.state == ImageState.ACTIVE:
        _activate(image, info.backend_id or image.backend_id, info.size_bytes)
    elif info.state == ImageState.ERROR:
        _mark_failed(image, "the provider reported an error")


def _activate(image: Image, backend_id: str, size_bytes: int) -> None:
    try:
        image.update(
            actions=[Image.state.set("active"), Image.size_bytes.set(size_bytes), Image.backend_id.set(backend_id)],
            condition=Image.state == "pending",
        )
    except UpdateError:
        image.refresh(consistent_read=True)
        return
    logger.info("image_active", extra={"account_id": image.account_id, "image_id": image.image_id, "size_bytes": size_bytes})


def _mark_failed(image: Image, reason: str) -> None:
    """Fail an image that never became active; it was never charged, so it leaves billing."""
    try:
        image.update(
            actions=[Image.state.set("error"), Image.billing_shard.remove(), Image.billing_sort.remove()],
            condition=Image.state == "pending",
        )
    except UpdateError:
        image.refresh(consistent_read=True)
        return
    logger.warning("image_failed", extra={"account_id": image.account_id, "image_id": image.image_id, "reason": reason})


def hourly_storage_price(image: Image) -> int:
    if image.deleted_at is not None or image.state != "active":
        return 0
    return round_half_up(settings().storage_micros_per_gb_hour * int(image.size_bytes) / BYTES_PER_GB)


def image_json(image: Image) -> dict[str, Any]:
    return {
        "id": image.image_id,
        "name": image.name,
        "region": image.region,
        "state": image.state,
        "size_bytes": int(image.size_bytes),
        "source_vm": image.source_vm,
        "created_at": image.created_at,
        "deleted_at": image.deleted_at,
        "price_hourly": money_json(hourly_storage_price(image)),
    }
