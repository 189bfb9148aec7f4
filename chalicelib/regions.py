"""Region set-up for operators: adding regions, switching them on and off, and importing a
backend's plans and stock images into the catalog.

Credentials never enter the catalog: settings that look like one are rejected and belong
in the secret that `secret_ref` names. Imports store new plans and images disabled, and a
plan is never enabled here, so nothing without a price reaches customers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib.backends.base import Backend, ImageState, PlanOffer
from chalicelib.backends.registry import backend_class, create_backend
from chalicelib.catalog import invalidate
from chalicelib.config import settings as deployment_settings
from chalicelib.errors import Conflict, InvalidRequest, NotFound
from chalicelib.log import logger
from chalicelib.models.catalog import KIND_IMAGE, KIND_PLAN, KIND_REGION, CatalogItem
from chalicelib.secrets import get_secret

# Catalog ids are what customers send as region, plan and image, and the API accepts at most
# 64 characters for each.
MAX_ID_LENGTH = 64
REGION_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
MAX_NAME_LENGTH = 100
MAX_SETTINGS = 50
MAX_SETTING_TEXT_LENGTH = 2000
# Settings may contain objects (Libcloud's `driver_kwargs`), nested at most this deep.
MAX_SETTINGS_DEPTH = 2
SECRET_REF_PATTERN = re.compile(r"^(file|ssm|secretsmanager):\S+$")
# A setting whose key has one of these words, or a word ending in one, is a credential.
SECRET_KEY_WORDS = ("password", "passwd", "passphrase", "token", "secret", "key", "credential", "credentials")
# PEM blocks: private keys and certificates pasted into a setting.
PEM_MARKER = "-----BEGIN"
ID_SUFFIX_LIMIT = 100


@dataclass
class ImportResult:
    """The catalog changes of one import: ids of added items, ids of existing plans that
    gained this region, and the count of provider items already in the catalog."""

    added: list[str] = field(default_factory=list)
    linked: list[str] = field(default_factory=list)
    unchanged: int = 0


# Regions.


def add_region(
    region_id: str,
    name: str,
    backend_type: str,
    settings: Mapping[str, Any],
    secret_ref: str | None = None,
) -> CatalogItem:
    """Store a new region, disabled until `set_region_enabled` switches it on.

    Raises InvalidRequest naming the field at fault, and Conflict when the id is taken.
    """
    region_id = check_id(region_id, "region_id")
    name = check_name(name)
    check_backend_type(backend_type)
    checked_settings = check_settings(settings)
    secret_ref = check_secret_ref(secret_ref)

    region = CatalogItem(
        KIND_REGION,
        region_id,
        name=name,
        enabled=False,
        backend=backend_type,
        settings=checked_settings,
        secret_ref=secret_ref,
    )
    try:
        region.save(condition=CatalogItem.item_id.does_not_exist())
    except PutError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
        raise Conflict(f"region {region_id!r} already exists", field="region_id") from None

    invalidate()
    logger.info("region_added", extra={"region_id": region_id, "backend": backend_type})
    return region


def set_region_enabled(region_id: str, enabled: bool) -> CatalogItem:
    """Offer a region to customers, or stop offering it. Existing VMs keep running either way.

    Enabling first builds the region's backend, so a region whose settings are incomplete
    or whose secret cannot be read is never offered. No request goes to the provider.
    """
    region = _get_region(region_id)
    if enabled:
        _build_backend(region)

    region.update(actions=[CatalogItem.enabled.set(enabled)])

    invalidate()
    logger.info("region_enabled" if enabled else "region_disabled", extra={"region_id": region_id})
    return region


# Imports.


def import_plans(region_id: str) -> ImportResult:
    """Import the provider's plans of a region into the catalog.

    An offer whose backend id a plan already has for this region is left alone. Otherwise
    the first plan (by id) with the same RAM, vCPUs and disk that has no backend id for this
    region gets this one, and keeps its price and enabled state. Any other offer becomes a
    new plan, stored disabled and without a price, for an admin to price and enable.
    """
    region = _get_region(region_id)
    offers = sorted(_build_backend(region).list_plans(), key=lambda offer: offer.backend_id)
    plans = sorted(CatalogItem.query(KIND_PLAN, consistent_read=True), key=lambda item: item.item_id)
    mapped = {_region_ids(plan).get(region_id) for plan in plans}
    taken = {plan.item_id for plan in plans}
    result = ImportResult()

    for offer in offers:
        if offer.backend_id in mapped:
            result.unchanged += 1
            continue
        match = next((plan for plan in plans if region_id not in _region_ids(plan) and _same_size(plan, offer)), None)
        if match is not None:
            _link_plan(match, region_id, offer.backend_id)
            result.linked.append(match.item_id)
        else:
            plan = _new_plan(region_id, offer, taken)
            plans.append(plan)
            result.added.append(plan.item_id)
        mapped.add(offer.backend_id)

    invalidate()
    logger.info(
        "region_plans_imported",
        extra={"region_id": region_id, "added": len(result.added), "linked": len(result.linked)},
    )
    return result


def import_images(region_id: str) -> ImportResult:
    """Add the provider's active stock images of a region to the catalog, disabled.

    An image whose backend id the region already has in the catalog is left alone.
    """
    region = _get_region(region_id)
    images = _build_backend(region).list_public_images()
    catalog_images = list(CatalogItem.query(KIND_IMAGE, consistent_read=True))
    known = {item.backend_id for item in catalog_images if item.region == region_id}
    taken = {item.item_id for item in catalog_images}
    result = ImportResult()

    for image in sorted(images, key=lambda item: item.backend_id):
        if image.state != ImageState.ACTIVE:
            continue
        if image.backend_id in known:
            result.unchanged += 1
            continue
        item = CatalogItem(
            KIND_IMAGE,
            _free_id(f"{region_id}-{slug(image.name or image.backend_id)}", taken),
            name=(image.name or image.backend_id)[:MAX_NAME_LENGTH],
            enabled=False,
            region=region_id,
            backend_id=image.backend_id,
        )
        _save_new(item)
        known.add(image.backend_id)
        result.added.append(item.item_id)

    invalidate()
    logger.info("region_images_imported", extra={"region_id": region_id, "added": len(result.added)})
    return result


# Validation.


def check_id(value: str, field: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_ID_LENGTH or not REGION_ID_PATTERN.match(value):
        raise InvalidRequest(
            f"{field} must be 1 to {MAX_ID_LENGTH} lower-case letters, digits or hyphens, "
            "starting with a letter or digit",
            field=field,
        )
    return value


def check_name(value: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_NAME_LENGTH:
        raise InvalidRequest(f"name must be 1 to {MAX_NAME_LENGTH} characters", field="name")
    return value


def check_backend_type(backend_type: str) -> None:
    """Raise InvalidRequest unless the registry has `backend_type` and this stage allows it."""
    backend_class(backend_type)
    if backend_type == "demo" and not deployment_settings().is_local:
        raise InvalidRequest("the demo backend runs only in the local and test stages", field="backend")


def check_settings(settings: Any) -> dict[str, Any]:
    """Return a region's settings after checking that they hold no credentials.

    Settings are a JSON object of strings, integers and booleans, and of objects of those.
    Floats are rejected because the catalog stores integers only, so a fraction such as a
    timeout of 2.5 seconds is written as the text "2.5".
    """
    if not isinstance(settings, Mapping):
        raise InvalidRequest("settings must be a JSON object", field="settings")
    if len(settings) > MAX_SETTINGS:
        raise InvalidRequest(f"settings may have at most {MAX_SETTINGS} keys", field="settings")
    return _check_object(settings, "settings", depth=1)


def check_secret_ref(secret_ref: str | None) -> str | None:
    """Return the secret reference, or None when the region needs no secret."""
    if secret_ref is None or not secret_ref.strip():
        return None
    secret_ref = secret_ref.strip()
    if not SECRET_REF_PATTERN.match(secret_ref):
        raise InvalidRequest(
            "secret_ref must be file:<name>, ssm:<parameter name> or secretsmanager:<secret id>",
            field="secret_ref",
        )
    return secret_ref


def looks_like_secret_key(key: str) -> bool:
    """Return whether a setting named `key` (snake_case, camelCase or kebab-case) is a credential."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower()
    return any(word.endswith(SECRET_KEY_WORDS) for word in re.split(r"[^a-z0-9]+", words) if word)


def slug(text: str) -> str:
    """Return `text` as lower-case letters, digits, dots and hyphens, for a catalog id."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "item"


def _check_object(settings: Mapping[Any, Any], where: str, *, depth: int) -> dict[str, Any]:
    checked: dict[str, Any] = {}
    for key, value in settings.items():
        path = f"{where}.{key}"
        if not isinstance(key, str) or not key:
            raise InvalidRequest(f"{where} keys must be non-empty strings", field="settings")
        if looks_like_secret_key(key):
            raise InvalidRequest(
                f"setting {path} looks like a credential; store it in the secret that secret_ref names",
                field="settings",
            )
        checked[key] = _check_value(value, path, depth=depth)
    return checked


def _check_value(value: Any, path: str, *, depth: int) -> Any:
    if isinstance(value, int):  # booleans too
        return value
    if isinstance(value, str):
        _check_text(value, path)
        return value
    if isinstance(value, Mapping) and depth < MAX_SETTINGS_DEPTH:
        return _check_object(value, path, depth=depth + 1)
    if isinstance(value, float):
        raise InvalidRequest(f'setting {path} is a fraction; write it as text, such as "2.5"', field="settings")
    raise InvalidRequest(
        f"setting {path} must be a string, an integer or a boolean"
        + (", or an object of those" if depth < MAX_SETTINGS_DEPTH else ""),
        field="settings",
    )


def _check_text(value: str, path: str) -> None:
    if len(value) > MAX_SETTING_TEXT_LENGTH:
        raise InvalidRequest(f"setting {path} is longer than {MAX_SETTING_TEXT_LENGTH} characters", field="settings")
    if PEM_MARKER in value:
        raise InvalidRequest(
            f"setting {path} contains a PEM key or certificate; store it in the secret that secret_ref names",
            field="settings",
        )
    if "://" in value and _has_url_password(value):
        raise InvalidRequest(
            f"setting {path} is a URL with a password; store the password in the secret that secret_ref names",
            field="settings",
        )


def _has_url_password(value: str) -> bool:
    try:
        return urlsplit(value).password is not None
    except ValueError:
        return False


# Helpers.


def _get_region(region_id: str) -> CatalogItem:
    try:
        return CatalogItem.get(KIND_REGION, region_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"region {region_id!r} does not exist", field="region_id") from None


def _build_backend(region: CatalogItem) -> Backend:
    """Build the region's backend from its stored settings and secret, without caching it."""
    region_settings = cast("dict[str, Any]", region.settings)
    return create_backend(region.backend or "", region.item_id, region_settings, get_secret(region.secret_ref))


def _same_size(plan: CatalogItem, offer: PlanOffer) -> bool:
    return (plan.ram_mb, plan.vcpus, plan.disk_gb) == (offer.ram_mb, offer.vcpus, offer.disk_gb)


def _region_ids(plan: CatalogItem) -> dict[str, str]:
    # JsonAttribute is declared as a string attribute, so mypy needs the stored type spelt out.
    return cast("dict[str, str]", plan.region_ids)


def _link_plan(plan: CatalogItem, region_id: str, backend_id: str) -> None:
    region_ids: Any = {**_region_ids(plan), region_id: backend_id}
    plan.update(actions=[CatalogItem.region_ids.set(region_ids)])
    logger.info("plan_region_linked", extra={"plan_id": plan.item_id, "region_id": region_id})


def _new_plan(region_id: str, offer: PlanOffer, taken: set[str]) -> CatalogItem:
    plan = CatalogItem(
        KIND_PLAN,
        _free_id(f"{region_id}-{slug(offer.backend_id)}", taken),
        name=(offer.name or offer.backend_id)[:MAX_NAME_LENGTH],
        enabled=False,
        ram_mb=offer.ram_mb,
        vcpus=offer.vcpus,
        disk_gb=offer.disk_gb,
        bandwidth_gib=offer.bandwidth_gib,
        prices=[],
        region_ids={region_id: offer.backend_id},
    )
    _save_new(plan)
    return plan


def _free_id(base: str, taken: set[str]) -> str:
    """Return `base`, cut to MAX_ID_LENGTH and given a number if it is in `taken`, and reserve it."""
    stem = base[:MAX_ID_LENGTH].strip("-.")
    candidate = stem
    for number in range(2, ID_SUFFIX_LIMIT):
        if candidate not in taken:
            taken.add(candidate)
            return candidate
        candidate = f"{stem[: MAX_ID_LENGTH - 4].strip('-.')}-{number}"
    raise Conflict(f"catalog ids starting with {stem!r} are all taken; rename some of those items")


def _save_new(item: CatalogItem) -> None:
    try:
        item.save(condition=CatalogItem.item_id.does_not_exist())
    except PutError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
        raise Conflict(f"catalog id {item.item_id!r} was taken meanwhile; run the import again") from None
