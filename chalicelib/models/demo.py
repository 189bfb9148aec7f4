"""The demo backend's own table: the VMs it pretends to run. Used by the local stage only."""

from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, table_name


class DemoMachine(Model):
    class Meta(BaseMeta):
        table_name = table_name("demo-machines")

    machine_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    plan = UnicodeAttribute()
    image = UnicodeAttribute()
    created_at = UnicodeAttribute()
    power = UnicodeAttribute(default="online")
    # Traffic counter resets to zero at this time (a simulated reboot of the host).
    counter_reset_at = UnicodeAttribute(null=True)
