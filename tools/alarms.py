"""The CloudWatch alarms of the stack and the SNS topic they notify, for tools.infra.

Each alarm watches one failure an operator must act on; docs/operations.md describes what
to do for each, under the alarm's name. The custom metrics come from chalicelib.log in the
"Lobster" namespace with the dimension service=lobster.
"""

from __future__ import annotations

from typing import Any

from chalicelib.log import (
    METRIC_BACKEND_ERRORS,
    METRIC_BILLING_RUN_PLANNED,
    METRIC_BILLING_SHARD_LAG,
    METRIC_TRAFFIC_READING_FAILURES,
    METRIC_WEBHOOK_ERRORS,
    METRIC_WEBHOOK_REJECTIONS,
    NAMESPACE,
    SERVICE,
)

TOPIC = "AlarmTopic"
HOUR_SECONDS = 3600
# The hourly run starts at HH:05; two hours without one means a run was missed, not late.
MISSING_RUN_HOURS = 2
# A shard that finishes more than an hour after its hour ended leaves customers' balances stale.
LATE_SHARD_SECONDS = 3600
WEBHOOK_WINDOW_SECONDS = 900
BACKEND_WINDOW_SECONDS = 900
FIVE_MINUTES = 300
RUNBOOK = "See docs/operations.md, section"

# Alarm logical id -> the failure it stands for; tests check that each one exists.
ALARMED_FAILURES = {
    "BillingRunMissingAlarm": "no hourly billing run was planned for two hours",
    "BillingRunLateAlarm": "a billing shard finished more than an hour after its hour ended",
    "BillingDeadLetterAlarm": "billing shard messages reached the dead-letter queue",
    "WebhookRejectionAlarm": "many payment callbacks were rejected (4xx)",
    "WebhookServerErrorAlarm": "payment callbacks failed with a server error (5xx)",
    "ApiFunctionErrorAlarm": "the API function crashed or timed out",
    "BackendErrorAlarm": "provider APIs failed often",
}


def _custom_metric(name: str) -> dict[str, Any]:
    return {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": [{"Name": "service", "Value": SERVICE}]}


def _alarm(logical_id: str, properties: dict[str, Any]) -> dict[str, Any]:
    description = f"{ALARMED_FAILURES[logical_id]}. {RUNBOOK} {logical_id}."
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "AlarmActions": [{"Ref": TOPIC}],
            "OKActions": [{"Ref": TOPIC}],
            "TreatMissingData": "notBreaching",
            **properties,
        },
    }


def alarm_resources() -> dict[str, Any]:
    resources: dict[str, Any] = {
        TOPIC: {
            "Type": "AWS::SNS::Topic",
            "Properties": {
                "DisplayName": "Lobster alarms",
                "Subscription": [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}],
            },
        },
        "BillingRunMissingAlarm": _alarm(
            "BillingRunMissingAlarm",
            {
                **_custom_metric(METRIC_BILLING_RUN_PLANNED),
                "Statistic": "Sum",
                "Period": HOUR_SECONDS,
                "EvaluationPeriods": MISSING_RUN_HOURS,
                "DatapointsToAlarm": MISSING_RUN_HOURS,
                "Threshold": 1,
                "ComparisonOperator": "LessThanThreshold",
                # No data is the failure itself: the planner did not run at all.
                "TreatMissingData": "breaching",
            },
        ),
        "BillingRunLateAlarm": _alarm(
            "BillingRunLateAlarm",
            {
                **_custom_metric(METRIC_BILLING_SHARD_LAG),
                "Statistic": "Maximum",
                "Period": HOUR_SECONDS,
                "EvaluationPeriods": 1,
                "Threshold": LATE_SHARD_SECONDS,
                "ComparisonOperator": "GreaterThanThreshold",
            },
        ),
        "BillingDeadLetterAlarm": _alarm(
            "BillingDeadLetterAlarm",
            {
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["BillingDeadLetterQueue", "QueueName"]}}],
                "Statistic": "Maximum",
                "Period": FIVE_MINUTES,
                "EvaluationPeriods": 1,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
            },
        ),
        "WebhookRejectionAlarm": _alarm(
            "WebhookRejectionAlarm",
            {
                **_custom_metric(METRIC_WEBHOOK_REJECTIONS),
                "Statistic": "Sum",
                "Period": WEBHOOK_WINDOW_SECONDS,
                "EvaluationPeriods": 1,
                "Threshold": {"Ref": "WebhookRejectionThreshold"},
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            },
        ),
        "WebhookServerErrorAlarm": _alarm(
            "WebhookServerErrorAlarm",
            {
                **_custom_metric(METRIC_WEBHOOK_ERRORS),
                "Statistic": "Sum",
                "Period": FIVE_MINUTES,
                "EvaluationPeriods": 1,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
            },
        ),
        "ApiFunctionErrorAlarm": _alarm(
            "ApiFunctionErrorAlarm",
            {
                "Namespace": "AWS/Lambda",
                "MetricName": "Errors",
                "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": "APIHandler"}}],
                "Statistic": "Sum",
                "Period": FIVE_MINUTES,
                "EvaluationPeriods": 1,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
            },
        ),
        "BackendErrorAlarm": _alarm("BackendErrorAlarm", _backend_errors()),
    }
    return resources


def _backend_errors() -> dict[str, Any]:
    """Count provider failures a customer saw (502 and 503 responses) plus failed traffic readings."""

    def stat(metric_id: str, name: str) -> dict[str, Any]:
        return {
            "Id": metric_id,
            "MetricStat": {"Metric": _custom_metric(name), "Period": BACKEND_WINDOW_SECONDS, "Stat": "Sum"},
            "ReturnData": False,
        }

    return {
        "Metrics": [
            {"Id": "failures", "Expression": "FILL(api, 0) + FILL(readings, 0)", "Label": "Provider failures", "ReturnData": True},
            stat("api", METRIC_BACKEND_ERRORS),
            stat("readings", METRIC_TRAFFIC_READING_FAILURES),
        ],
        "EvaluationPeriods": 1,
        "Threshold": {"Ref": "BackendErrorThreshold"},
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    }
