"""The public catalog: regions, plans and images a customer can choose from."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import json_response, route
from chalicelib.catalog import load_catalog, plan_json
from chalicelib.clock import now

blueprint = Blueprint(__name__)


@route(blueprint, "/v1/catalog", ["GET"], public=True)
def get_catalog() -> object:
    catalog = load_catalog()
    moment = now()
    return json_response(
        {
            "regions": [
                {"id": region.item_id, "name": region.name}
                for region in sorted(catalog.regions.values(), key=lambda item: item.item_id)
                if region.enabled
            ],
            "plans": [plan_json(plan, moment) for plan in sorted(catalog.plans.values(), key=lambda item: item.item_id) if plan.enabled],
            "images": [
                {"id": image.item_id, "name": image.name, "region": image.region}
                for image in sorted(catalog.images.values(), key=lambda item: item.item_id)
                if image.enabled
            ],
        }
    )
