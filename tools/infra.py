"""Generate infra/template.json and .chalice/policy-prod.json from the table models.

The CloudFormation template declares what `chalice package` does not: the tables, the
billing queue and its dead-letter queue, the queue URL handed to the planner, the alarms
and their SNS topic, and the stack parameters (alarm e-mail, gateway configuration,
tracing). The IAM policy names exactly those tables and the queue, because Chalice's
generated policy does not see PynamoDB calls. Run `python -m tools.infra` after changing
a model or a function; a test checks that the committed files match.
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
MONEY_TABLES = frozenset({"accounts", "audit", "ledger", "payments"})
# Those plus the billing state that money is computed from: which VMs and images exist
# since when, and the plan prices.
RECOVERABLE_TABLES = MONEY_TABLES | {"catalog", "images", "vms"}
# Short-lived items that DynamoDB deletes some time after this epoch-seconds attribute.
TTL_ATTRIBUTES = {
    "audit": "expires_epoch",
    "auth": "expires_epoch",
    "idempotency": "expiration",
    "jobs": "expires_epoch",
    "rate-limits": "expires_epoch",
    "sessions": "expires_epoch",
}
API_FUNCTION = "api_handler"
METRICS_NAMESPACE = "Lobster"
METRICS_DIMENSIONS = [{"Name": "service", "Value": "lobster"}]
XRAY_POLICY = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"}
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
    if suffix in RECOVERABLE_TABLES:
        properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
        properties["DeletionProtectionEnabled"] = True
    if suffix in TTL_ATTRIBUTES:
        properties["TimeToLiveSpecification"] = {"AttributeName": TTL_ATTRIBUTES[suffix], "Enabled": True}
    resource = {"Type": "AWS::DynamoDB::Table", "Properties": properties}
    if suffix in RECOVERABLE_TABLES:
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
    for name in function_names():
        _merge(resources, _function_settings(name))
    _merge(resources, {"HourlyBilling": {"Properties": {"Environment": {"Variables": {"LOBSTER_BILLING_QUEUE_URL": {"Ref": "BillingQueue"}}}}}})
    _merge(resources, {"BillingWorker": {"DependsOn": ["BillingQueue"]}})
    # Chalice 1.34 names the API log group after "ApiHandler", a resource that does not
    # exist (the function is "APIHandler"); this points it at the function.
    _merge(resources, {"ApiHandlerLogGroup": {"Properties": {"LogGroupName": {"Fn::Sub": "/aws/lambda/${APIHandler}"}}}})

    resources["SendMailPolicy"] = _send_mail_policy()
    resources.update(_gateway_responses())

    from tools.alarms import alarm_resources

    resources.update(alarm_resources())
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": PARAMETERS,
        "Conditions": {
            "TracingEnabled": {"Fn::Equals": [{"Ref": "Tracing"}, "enabled"]},
            "HasPublicUrl": {"Fn::Not": [{"Fn::Equals": [{"Ref": "PublicUrl"}, ""]}]},
        },
        "Resources": resources,
    }


PARAMETERS: dict[str, Any] = {
    "AlarmEmail": {
        "Type": "String",
        "AllowedPattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        "Description": "E-mail address that receives the alarms; confirm the subscription e-mail SNS sends",
    },
    "Gateways": {
        "Type": "String",
        "Default": "{}",
        "Description": "LOBSTER_GATEWAYS: JSON object of enabled payment gateways with their settings and secret_ref "
        "(ssm:/lobster/prod/... or secretsmanager:lobster/prod/...); never the secrets themselves",
    },
    "Tracing": {
        "Type": "String",
        "Default": "disabled",
        "AllowedValues": ["disabled", "enabled"],
        "Description": "X-Ray tracing of every function; X-Ray bills per trace recorded",
    },
    "MailFrom": {
        "Type": "String",
        "Description": "LOBSTER_MAIL_FROM: sender of customer notices, an address of MailIdentity, e.g. billing@example.com",
    },
    "MailIdentity": {
        "Type": "String",
        "Description": "The Amazon SES identity (domain or address) verified for MailFrom; the functions may send only as it",
    },
    "PublicUrl": {
        "Type": "String",
        "Default": "",
        "Description": "LOBSTER_API_URL: the public address of the API used in e-mail links, e.g. https://panel.example.com; "
        "empty keeps the built-in default",
    },
    "WebhookRejectionThreshold": {
        "Type": "Number",
        "Default": 20,
        "MinValue": 1,
        "Description": "Rejected payment callbacks per 15 minutes that raise an alarm",
    },
    "BackendErrorThreshold": {
        "Type": "Number",
        "Default": 10,
        "MinValue": 1,
        "Description": "Provider failures per 15 minutes that raise an alarm",
    },
}


def function_names() -> list[str]:
    """Names of the app's Lambda functions: the API handler and every event handler."""
    import app

    return [API_FUNCTION, *sorted(source.name for source in app.app.event_sources)]


def function_logical_id(name: str) -> str:
    """The logical id `chalice package` gives the function `name`."""
    from chalice.utils import to_cfn_resource_name

    return "APIHandler" if name == API_FUNCTION else to_cfn_resource_name(name)


def _function_settings(name: str) -> dict[str, Any]:
    """Tracing, the tracing switch and the gateway configuration of one function and its role."""
    from chalice.utils import to_cfn_resource_name

    tracing_disabled = {"Fn::If": ["TracingEnabled", "false", "true"]}
    return {
        function_logical_id(name): {
            "Properties": {
                "Tracing": {"Fn::If": ["TracingEnabled", "Active", "PassThrough"]},
                "Environment": {
                    "Variables": {
                        "POWERTOOLS_TRACE_DISABLED": tracing_disabled,
                        "LOBSTER_GATEWAYS": {"Ref": "Gateways"},
                        "LOBSTER_MAIL_FROM": {"Ref": "MailFrom"},
                        "LOBSTER_API_URL": {"Fn::If": ["HasPublicUrl", {"Ref": "PublicUrl"}, {"Ref": "AWS::NoValue"}]},
                    }
                },
            }
        },
        to_cfn_resource_name(f"{name}_role"): {
            "Properties": {"ManagedPolicyArns": {"Fn::If": ["TracingEnabled", [XRAY_POLICY], {"Ref": "AWS::NoValue"}]}}
        },
    }


# Responses API Gateway produces itself, before any function runs (an unknown path is
# MISSING_AUTHENTICATION_TOKEN), rewritten into the app's error format.
GATEWAY_RESPONSES = {
    "MISSING_AUTHENTICATION_TOKEN": ("404", "not_found", "no route matches this method and path; see /openapi.json"),
    "DEFAULT_4XX": (None, "bad_request", None),
    "DEFAULT_5XX": (None, "internal_error", None),
}


def _gateway_responses() -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for response_type, (status, code, message) in GATEWAY_RESPONSES.items():
        # $context.error.messageString is API Gateway's message, already a quoted JSON string.
        message_json = json.dumps(message) if message else "$context.error.messageString"
        properties: dict[str, Any] = {
            "RestApiId": {"Ref": "RestAPI"},
            "ResponseType": response_type,
            "ResponseTemplates": {"application/json": f'{{"error": {{"code": "{code}", "message": {message_json}, "field": null}}}}'},
            "ResponseParameters": {"gatewayresponse.header.X-Content-Type-Options": "'nosniff'"},
        }
        if status:
            properties["StatusCode"] = status
        resources[_pascal(response_type.lower()) + "GatewayResponse"] = {"Type": "AWS::ApiGateway::GatewayResponse", "Properties": properties}
    return resources


def _send_mail_policy() -> dict[str, Any]:
    """Let every function send e-mail through Amazon SES as the MailIdentity identity only.

    A separate policy because its resource depends on a stack parameter, which the static
    policy file cannot name.
    """
    from chalice.utils import to_cfn_resource_name

    return {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "lobster-send-mail",
            "Roles": [{"Ref": to_cfn_resource_name(f"{name}_role")} for name in function_names()],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["ses:SendEmail"],
                        "Resource": {"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${MailIdentity}"},
                    }
                ],
            },
        },
    }


def _merge(target: dict[str, Any], extra: dict[str, Any]) -> None:
    """Deep-merge `extra` into `target`, as Chalice merges this template into its own."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def build_policy() -> dict[str, Any]:
    from chalicelib.models import ALL_MODELS
    from chalicelib.models.accounts import Account
    from chalicelib.models.ledger import LedgerLine

    table_arns: list[str] = []
    for model in ALL_MODELS:
        arn = f"arn:aws:dynamodb:*:*:table/{STAGE_PREFIX}{_suffix(model)}"
        table_arns += [arn, f"{arn}/index/*"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Tables", "Effect": "Allow", "Action": TABLE_ACTIONS, "Resource": table_arns},
            {
                # The hourly worker writes ledger lines and moves cursors as PartiQL statements.
                "Sid": "BillingStatements",
                "Effect": "Allow",
                "Action": ["dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate"],
                "Resource": [f"arn:aws:dynamodb:*:*:table/{STAGE_PREFIX}{_suffix(model)}" for model in (LedgerLine, Account)],
            },
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
