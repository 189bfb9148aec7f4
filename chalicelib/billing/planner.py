"""The hourly planner: splits one billing hour into shard messages.

Safe to run twice for the same hour: the run record is written once, and shards are
idempotent, so a repeated message changes nothing. With no queue configured (local runs
and tests) the shards are billed inline, by the same worker code the queue feeds, a few at
once as separate workers would, sharing one worker's account threads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import PutError

from chalicelib.billing import worker
from chalicelib.billing.shards import shard_names
from chalicelib.billing.worker import ShardIncomplete, ShardResult, bill_shard, run_isolated
from chalicelib.clock import HOUR, floor_hour, hour_key, iso, now, parse_hour_key
from chalicelib.config import settings
from chalicelib.log import logger, metrics
from chalicelib.models.jobs import JobRecord

RUN_RECORD_DAYS = 90
SQS_BATCH_LIMIT = 10  # SendMessageBatch takes at most 10 entries
# Shards billed at once without a queue. One shard reads while another writes, and together
# they use no more threads, so no more requests in flight, than one worker's ACCOUNT_THREADS.
LOCAL_SHARDS_AT_ONCE = 2


KIND_HOURLY = "hourly"
KIND_ROLLOVER = "rollover"


@dataclass(frozen=True)
class ShardMessage:
    """One unit of queued work: bill a shard through an hour, or settle a shard's month
    (then `hour` is the first hour of the closing month)."""

    hour: str
    shard: str
    kind: str = KIND_HOURLY

    def to_json(self) -> str:
        return json.dumps({"hour": self.hour, "shard": self.shard, "kind": self.kind})

    @classmethod
    def from_json(cls, body: str) -> ShardMessage:
        data = json.loads(body)
        parse_hour_key(data["hour"])
        kind = data.get("kind", KIND_HOURLY)
        if kind not in (KIND_HOURLY, KIND_ROLLOVER):
            raise ValueError(f"unknown shard message kind {kind!r}")
        return cls(hour=data["hour"], shard=data["shard"], kind=kind)


def hour_to_bill(moment: datetime) -> datetime:
    """Return the hour a run at `moment` bills: the last hour that has ended."""
    return floor_hour(moment) - HOUR


def plan_hour(hour: datetime) -> list[ShardMessage]:
    """Record the run for `hour` and dispatch one message per shard."""
    messages = [ShardMessage(hour_key(hour), shard) for shard in shard_names()]
    first_run = _record_run(hour, len(messages))
    logger.info("billing_run_planned", extra={"hour": hour_key(hour), "shards": len(messages), "first_run": first_run})

    dispatch(messages)
    return messages


def plan_rollover(month: datetime) -> list[ShardMessage]:
    """Dispatch one rollover message per shard for the month starting at `month`."""
    messages = [ShardMessage(hour_key(month), shard, KIND_ROLLOVER) for shard in shard_names()]
    logger.info("rollover_planned", extra={"month": hour_key(month)[:7], "shards": len(messages)})
    dispatch(messages)
    return messages


def dispatch(messages: list[ShardMessage]) -> None:
    """Send shard messages to the queue, or handle them inline when no queue is configured."""
    if settings().billing_queue_url:
        _send_to_queue(messages)
        return

    at_once = max(1, min(LOCAL_SHARDS_AT_ONCE, worker.ACCOUNT_THREADS))
    threads = max(1, worker.ACCOUNT_THREADS // at_once)
    outcomes = run_isolated(messages, lambda message: handle_shard_message(message, threads), at_once)

    errors = [outcome for outcome in outcomes.values() if isinstance(outcome, Exception)]
    unexpected = [error for error in errors if not isinstance(error, ShardIncomplete)]
    if unexpected:
        raise unexpected[0]
    if errors:
        raise ShardIncomplete("; ".join(str(error) for error in errors))


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


def handle_shard_message(message: ShardMessage, threads: int | None = None) -> ShardResult:
    """Handle one shard message: the body of the SQS worker, and of inline local runs.

    `threads` is the number of account threads of an hourly shard, ACCOUNT_THREADS by default.
    """
    if message.kind == KIND_ROLLOVER:
        from chalicelib.billing.rollover import roll_over_shard

        settled = roll_over_shard(message.shard, parse_hour_key(message.hour))
        return ShardResult(accounts_billed=settled)

    result = bill_shard(message.shard, parse_hour_key(message.hour), threads)
    metrics.add_metric(name="BillingShardsDone", unit="Count", value=1)
    return result
