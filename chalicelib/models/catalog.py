"""The catalog table: regions, plans and public images, small enough to read whole.

Plan prices are a history of `[effective_from, micros_per_hour]` pairs so a charge for
any hour uses the price that was in effect at that hour's start.
"""

from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, JsonAttribute, table_name

KIND_REGION = "region"
KIND_PLAN = "plan"
KIND_IMAGE = "image"


class CatalogItem(Model):
    class Meta(BaseMeta):
        table_name = table_name("catalog")

    kind = UnicodeAttribute(hash_key=True)
    item_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    enabled = BooleanAttribute(default=True)
    # Regions: backend type and non-secret settings; secrets are looked up by reference.
    backend = UnicodeAttribute(null=True)
    settings = JsonAttribute(default=dict)
    secret_ref = UnicodeAttribute(null=True)
    # Plans.
    ram_mb = NumberAttribute(null=True)
    vcpus = NumberAttribute(null=True)
    disk_gb = NumberAttribute(null=True)
    bandwidth_gib = NumberAttribute(null=True)
    prices = JsonAttribute(default=list)
    region_ids = JsonAttribute(default=dict)
    # Public images: the region and the backend's image id.
    region = UnicodeAttribute(null=True)
    backend_id = UnicodeAttribute(null=True)
