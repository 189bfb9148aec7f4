"""The VMs table, keyed by account so one customer's VMs are one query.

A VM takes part in hourly billing while `billing_shard` is set: from creation until its
last hour is charged. The sparse `billing-index` lists exactly those VMs per shard, so
the hourly run never scans the table.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, JsonAttribute, table_name


class BillingIndex(GlobalSecondaryIndex["Vm"]):
    class Meta:
        index_name = "billing-index"
        projection = AllProjection()

    billing_shard = UnicodeAttribute(hash_key=True)
    billing_sort = UnicodeAttribute(range_key=True)


class VmIdIndex(GlobalSecondaryIndex["Vm"]):
    class Meta:
        index_name = "vm-id-index"
        projection = AllProjection()

    vm_id = UnicodeAttribute(hash_key=True)


class Vm(Model):
    class Meta(BaseMeta):
        table_name = table_name("vms")

    account_id = UnicodeAttribute(hash_key=True)
    vm_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    region = UnicodeAttribute()
    plan_id = UnicodeAttribute()
    image_id = UnicodeAttribute()
    # provisioning | active | error | deleting | deleted
    state = UnicodeAttribute()
    created_at = UnicodeAttribute()
    # Billing starts here: the moment the backend reported the VM created.
    started_at = UnicodeAttribute(null=True)
    deleted_at = UnicodeAttribute(null=True)
    # VM-hours ending at or before this time were charged when the VM became active; the
    # hourly run charges only hours ending after it.
    hourly_from = UnicodeAttribute(null=True)
    backend_id = UnicodeAttribute(null=True)
    # [{"plan": id, "at": iso, "price_from": iso}], oldest first.
    plan_history = JsonAttribute(default=list)
    suspended = UnicodeAttribute(default="no")  # no | auto | manual
    power = UnicodeAttribute(default="unknown")  # online | offline | unknown
    addresses = JsonAttribute(default=list)
    login_details = UnicodeAttribute(null=True)
    backend_error = UnicodeAttribute(null=True)
    delete_attempts = NumberAttribute(default=0)
    billing_shard = UnicodeAttribute(null=True)
    billing_sort = UnicodeAttribute(null=True)

    billing_index = BillingIndex()
    vm_id_index = VmIdIndex()
