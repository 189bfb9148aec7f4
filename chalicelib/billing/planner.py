"""The hourly planner: splits one billing hour into shard messages.

Safe to run twice for the same hour: the run record is written once, and shards are
idempotent, so a repeated message changes nothing. With no queue configured (local runs
and tests) the shards are billed inline, by the same worker code the queue feeds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import PutError

from chalicelib.billing.shards import shard_names
from chalicelib.billing.worker import ShardResult, bill_shard
from chalicelib.clock import HOUR, floor_hour, hour_key, iso, now, parse_hour_key
from chalicelib.config import settings
from chalicelib.log import logger, metrics
from chalicelib.models.jobs import JobRecord

RUN_RECORD_DAYS = 90
SQS_BATCH_LIMIT = 10  # SendMessageBatch takes at most 10 entries


@dataclass(frozen=True)
class ShardMessage:
    hour: str
    shard: str

    def to_json(self) -> str:
        return json.dumps({"hour": self.hour, "shard": self.shard})

    @classmethod
    def from_json(cls, body: str) -> ShardMessage:
        data = json.loads(body)
        parse_hour_key(data["hour"])
        return cls(hour=data["hour"], shard=data["shard"])


def hour_to_bill(moment: datetime) -> datetime:
    """The hour a run at `moment` bills: the last hour that has ended."""
    return floor_hour(moment) - HOUR


def plan_hour(hour: datetime) -> list[ShardMessage]:
    """Record the run for `hour` and dispatch one message per shard."""
    messages = [ShardMessage(hour_key(hour), shard) for shard in shard_names()]
    first_run = _record_run(hour, len(messages))
    logger.info("billing_run_planned", extra={"hour": hour_key(hour), "shards": len(messages), "first_run": first_run})

    if settings().billing_queue_url:
        _send_to_queue(messages)
    else:
        for message in messages:
            handle_shard_message(message)
    return messages


def _record_run(hour: datetime, shards: int) -> bool:
    record = JobRecord(
        f"hourly#{hour_key(hour)}",
        "run",
        state="planned",
        created_at=iso(now()),
        shard_count=shards,
        expires_epoch=int(now().timestamp()) + RUN_RECORD_DAYS * 86400,
    )
    try:
        record.save(condition=JobRecord.job_key.does_not_exist())
        return True
    except PutError as error:
        if error.cause_response_code != "ConditionalCheckFailedException":
            raise
        return False


def _send_to_queue(messages: list[ShardMessage]) -> None:
    import boto3

    queue = boto3.client("sqs")
    for offset in range(0, len(messages), SQS_BATCH_LIMIT):
        chunk = messages[offset : offset + SQS_BATCH_LIMIT]
        entries = [{"Id": str(i), "MessageBody": message.to_json()} for i, message in enumerate(chunk)]
        response = queue.send_message_batch(QueueUrl=settings().billing_queue_url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(f"SQS rejected {len(response['Failed'])} shard messages; the run will be retried")


def handle_shard_message(message: ShardMessage) -> ShardResult:
    """Bill one shard: the body of the SQS worker, and of inline local runs."""
    result = bill_shard(message.shard, parse_hour_key(message.hour))
    metrics.add_metric(name="BillingShardsDone", unit="Count", value=1)
    return result
