"""Entry points of the scheduled and queued billing functions, shared by the deployed
Lambdas (wired in app.py) and the local runner, so both run exactly the same code.

Each run adds the metrics the billing alarms watch: one BillingRunPlanned per hourly run,
and per queued shard its duration and how long after its hour's end it finished.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from chalicelib.billing.planner import KIND_HOURLY, ShardMessage, handle_shard_message, hour_to_bill, plan_hour
from chalicelib.clock import HOUR, iso, now, parse_hour_key, parse_iso
from chalicelib.log import (
    METRIC_BILLING_RUN_DURATION,
    METRIC_BILLING_RUN_PLANNED,
    METRIC_BILLING_SHARD_DURATION,
    METRIC_BILLING_SHARD_LAG,
    logger,
    metrics,
)

HOURLY_SCHEDULE_MINUTE = 5  # the run at HH:05 bills hour HH-1, leaving index replication time


def run_hourly_billing(event_time: str) -> dict[str, Any]:
    """Plan the billing of the last hour that ended before `event_time`."""
    started = time.monotonic()
    hour = hour_to_bill(parse_iso(event_time))
    messages = plan_hour(hour)

    metrics.add_metric(name=METRIC_BILLING_RUN_PLANNED, unit="Count", value=1)
    metrics.add_metric(name=METRIC_BILLING_RUN_DURATION, unit="Milliseconds", value=_elapsed_ms(started))
    return {"hour": iso(hour), "shards": len(messages)}


ROLLOVER_SCHEDULE = (15, 0, 1)  # minute, hour, day of month (UTC): after the 00:05 hourly run


def run_monthly_rollover(event_time: str) -> dict[str, Any]:
    """Settle the month that ended before `event_time`."""
    from chalicelib.billing.planner import plan_rollover
    from chalicelib.billing.rollover import closing_month

    month = closing_month(parse_iso(event_time))
    return {"month": iso(month)[:7], "shards": len(plan_rollover(month))}


def run_billing_shard(body: str) -> dict[str, Any]:
    started = time.monotonic()
    message = ShardMessage.from_json(body)
    result = handle_shard_message(message)

    metrics.add_metric(name=METRIC_BILLING_SHARD_DURATION, unit="Milliseconds", value=_elapsed_ms(started))
    if message.kind == KIND_HOURLY:
        hour_end = parse_hour_key(message.hour) + HOUR
        metrics.add_metric(name=METRIC_BILLING_SHARD_LAG, unit="Seconds", value=max(0, int((now() - hour_end).total_seconds())))
    return {"hour": message.hour, "shard": message.shard, "accounts_billed": result.accounts_billed}


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def scheduled_event(moment: datetime, rule: str) -> dict[str, Any]:
    """Build the EventBridge scheduled event a deployed schedule would deliver at `moment`."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": iso(moment),
        "region": "us-east-1",
        "resources": [f"arn:aws:events:us-east-1:000000000000:rule/{rule}"],
        "detail": {},
    }


def log_run(name: str, result: dict[str, Any]) -> None:
    logger.info(name, extra=result)
