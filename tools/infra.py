"""Generate infra/template.json and .chalice/policy-prod.json from the table models.

The CloudFormation template declares what `chalice package` does not: the tables, the
billing queue and its dead-letter queue, and the queue URL handed to the planner. The IAM
policy names exactly those tables and the queue, because Chalice's generated policy does
not see PynamoDB calls. Run `python -m tools.infra` after changing a model; a test checks
that the committed files match.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pynamodb.models import Model

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "infra" / "template.json"
POLICY_PATH = ROOT / ".chalice" / "policy-prod.json"
STAGE_PREFIX = "lobster-prod-"
QUEUE_NAME = "lobster-prod-billing"
# A shard message that fails this many times moves to the dead-letter queue.
MAX_RECEIVE_COUNT = 5
DLQ_RETENTION_SECONDS = 14 * 86400
# Tables whose loss would lose money records: point-in-time recovery and deletion protection.
MONEY_TABLES = frozenset({"accounts", "ledger", "payments"})
TTL_ATTRIBUTES = {"auth": "expires_epoch", "jobs": "expires_epoch"}
TABLE_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
]


def _suffix(model: type[Model]) -> str:
    from chalicelib.config import settings

    return model.Meta.table_name.removeprefix(settings().table_prefix)


def _logical_id(suffix: str) -> str:
    return "".join(part.capitalize() for part in suffix.split("-")) + "Table"


def _hash_first(key_schema: list[dict[str, str]]) -> list[dict[str, str]]:
    """CloudFormation requires the HASH key before the RANGE key."""
    return sorted(key_schema, key=lambda key: key.get("key_type", key.get("KeyType")) != "HASH")


def _table_resource(model: type[Model]) -> dict[str, Any]:
    suffix = _suffix(model)
    schema = model._get_schema()
    properties: dict[str, Any] = {
        "TableName": STAGE_PREFIX + suffix,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": schema["attribute_definitions"],
        "KeySchema": _hash_first(schema["key_schema"]),
        "SSESpecification": {"SSEEnabled": True},
    }
    indexes = schema.get("global_secondary_indexes") or []
    if indexes:
        properties["GlobalSecondaryIndexes"] = [
            {"IndexName": index["index_name"], "KeySchema": _hash_first(index["key_schema"]), "Projection": index["projection"]}
            for index in indexes
        ]
    if suffix in MONEY_TABLES:
        properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
        properties["DeletionProtectionEnabled"] = True
    if suffix in TTL_ATTRIBUTES:
        properties["TimeToLiveSpecification"] = {"AttributeName": TTL_ATTRIBUTES[suffix], "Enabled": True}
    resource = {"Type": "AWS::DynamoDB::Table", "Properties": properties}
    if suffix in MONEY_TABLES:
        resource["DeletionPolicy"] = "Retain"
        resource["UpdateReplacePolicy"] = "Retain"
    return resource


def _normalise_schema(properties: dict[str, Any]) -> None:
    """PynamoDB's schema uses snake_case keys; CloudFormation wants PascalCase."""
    def convert(value: Any) -> Any:
        if isinstance(value, list):
            return [convert(item) for item in value]
        if isinstance(value, dict):
            return {_pascal(key): convert(item) for key, item in value.items()}
        return value

    for key in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes"):
        if key in properties:
            properties[key] = convert(properties[key])


def _pascal(key: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in key.split("_"))


def build_template() -> dict[str, Any]:
    from chalicelib.models import ALL_MODELS

    resources: dict[str, Any] = {}
    for model in ALL_MODELS:
        resource = _table_resource(model)
        _normalise_schema(resource["Properties"])
        resources[_logical_id(_suffix(model))] = resource

    resources["BillingDeadLetterQueue"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {"QueueName": QUEUE_NAME + "-dlq", "MessageRetentionPeriod": DLQ_RETENTION_SECONDS, "SqsManagedSseEnabled": True},
    }
    resources["BillingQueue"] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "QueueName": QUEUE_NAME,
            # At least six times the worker timeout, as AWS advises for Lambda event sources.
            "VisibilityTimeout": 5400,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": ["BillingDeadLetterQueue", "Arn"]},
                "maxReceiveCount": MAX_RECEIVE_COUNT,
            },
        },
    }
    resources["HourlyBilling"] = {
        "Properties": {"Environment": {"Variables": {"LOBSTER_BILLING_QUEUE_URL": {"Ref": "BillingQueue"}}}}
    }
    resources["BillingWorker"] = {"DependsOn": ["BillingQueue"]}
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}


def build_policy() -> dict[str, Any]:
    from chalicelib.models import ALL_MODELS

    table_arns: list[str] = []
    for model in ALL_MODELS:
        arn = f"arn:aws:dynamodb:*:*:table/{STAGE_PREFIX}{_suffix(model)}"
        table_arns += [arn, f"{arn}/index/*"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Tables", "Effect": "Allow", "Action": TABLE_ACTIONS, "Resource": table_arns},
            {
                "Sid": "BillingQueue",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                "Resource": [f"arn:aws:sqs:*:*:{QUEUE_NAME}"],
            },
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": ["arn:aws:logs:*:*:log-group:/aws/lambda/lobster-prod-*"],
            },
            {
                "Sid": "Secrets",
                "Effect": "Allow",
                "Action": ["ssm:GetParameter", "secretsmanager:GetSecretValue"],
                "Resource": ["arn:aws:ssm:*:*:parameter/lobster/prod/*", "arn:aws:secretsmanager:*:*:secret:lobster/prod/*"],
            },
        ],
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> int:
    TEMPLATE_PATH.parent.mkdir(exist_ok=True)
    TEMPLATE_PATH.write_text(render(build_template()))
    POLICY_PATH.write_text(render(build_policy()))
    print(f"wrote {TEMPLATE_PATH.relative_to(ROOT)} and {POLICY_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
