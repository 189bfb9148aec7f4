"""The images table: customer images and snapshots, billed per GB-hour while they exist.

Like VMs, an image takes part in hourly billing while `billing_shard` is set.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, table_name


class ImageBillingIndex(GlobalSecondaryIndex["Image"]):
    class Meta:
        index_name = "billing-index"
        projection = AllProjection()

    billing_shard = UnicodeAttribute(hash_key=True)
    billing_sort = UnicodeAttribute(range_key=True)


class Image(Model):
    class Meta(BaseMeta):
        table_name = table_name("images")

    account_id = UnicodeAttribute(hash_key=True)
    image_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    region = UnicodeAttribute()
    state = UnicodeAttribute()  # pending | active | error | deleted
    backend_id = UnicodeAttribute(null=True)
    size_bytes = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    deleted_at = UnicodeAttribute(null=True)
    source_vm = UnicodeAttribute(null=True)
    billing_shard = UnicodeAttribute(null=True)
    billing_sort = UnicodeAttribute(null=True)

    billing_index = ImageBillingIndex()
