"""The ledger table: every charge and credit as one line with a deterministic key.

The sort key starts with the line's own time (ISO 8601, UTC) so a month is a key range,
and ends with what the line is for, so writing the same event twice hits the same key.
Amounts are signed micro-units: credits positive, charges negative.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import BaseMeta, MicrosAttribute, table_name


class LedgerLine(Model):
    class Meta(BaseMeta):
        table_name = table_name("ledger")

    account_id = UnicodeAttribute(hash_key=True)
    line_key = UnicodeAttribute(range_key=True)
    amount_micros = MicrosAttribute()
    kind = UnicodeAttribute()  # vm | storage | bandwidth | payment | refund | adjustment
    description = UnicodeAttribute()
    created_at = UnicodeAttribute()
    # Which batch applies this line to the balance: "hourly" lines are applied by the
    # hourly cursor update, every other batch in the same transaction as the line.
    batch = UnicodeAttribute()
    # Hourly lines: the hour whose run applies them ("YYYY-MM-DDTHH").
    period = UnicodeAttribute(null=True)
    vm_id = UnicodeAttribute(null=True)
    region = UnicodeAttribute(null=True)
    bandwidth_reading = NumberAttribute(null=True)
    bandwidth_delta = NumberAttribute(null=True)
    bandwidth_month = UnicodeAttribute(null=True)
