"""The jobs table: records of scheduled runs (hourly billing, monthly rollover) and the
shards each run dispatched, so a run is planned once and a missing run can be found.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, table_name


class JobRecord(Model):
    class Meta(BaseMeta):
        table_name = table_name("jobs")

    job_key = UnicodeAttribute(hash_key=True)
    part = UnicodeAttribute(range_key=True)
    state = UnicodeAttribute()
    created_at = UnicodeAttribute()
    finished_at = UnicodeAttribute(null=True)
    shard_count = NumberAttribute(default=0)
    expires_epoch = NumberAttribute(null=True)
