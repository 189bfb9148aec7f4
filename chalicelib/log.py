"""The process-wide Powertools logger, metrics and opt-in tracing, with one fixed service name.

Business events are logged at INFO with ids and amounts as keys; secrets and whole
webhook bodies are never logged. Metrics are buffered per invocation and written as one
CloudWatch embedded-metric-format line by `publish_metrics`, the middleware app.py
registers for every handler. The alarms in infra/template.json watch the names below.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

SERVICE = "lobster"
NAMESPACE = "Lobster"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

METRIC_BILLING_RUN_PLANNED = "BillingRunPlanned"
METRIC_BILLING_RUN_DURATION = "BillingRunDuration"
METRIC_BILLING_SHARD_DURATION = "BillingShardDuration"
# Seconds from the end of the billed hour until a shard of it finished.
METRIC_BILLING_SHARD_LAG = "BillingShardLag"
METRIC_WEBHOOK_REJECTIONS = "WebhookRejections"
METRIC_WEBHOOK_ERRORS = "WebhookErrors"
METRIC_BACKEND_ERRORS = "BackendErrors"
METRIC_TRAFFIC_READING_FAILURES = "TrafficReadingFailures"

WEBHOOK_PATH_PREFIX = "/v1/webhooks/"
# The statuses the API edge responds to BackendError and BackendUnavailable with.
BACKEND_ERROR_STATUSES = frozenset({502, 503})

TRACE_DISABLED_VARIABLE = "POWERTOOLS_TRACE_DISABLED"
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


def publish_metrics(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware: run the handler, then write the metrics it added.

    Powertools' `log_metrics` decorator does the same for a plain Lambda handler. This
    form suits Chalice, whose handlers are objects, and it writes and warns nothing when an
    invocation added no metric. HTTP responses are counted too: webhook rejections and
    failures, and provider failures that reached a customer.
    """
    try:
        response = get_response(event)
        count_response(getattr(event, "path", None), response)
        return response
    finally:
        if metrics.metric_set:
            metrics.flush_metrics()


def count_response(path: Any, response: Any) -> None:
    """Add the metrics an HTTP response of route `path` stands for; other results are ignored."""
    status = getattr(response, "status_code", None)
    if not isinstance(status, int):
        return
    if status in BACKEND_ERROR_STATUSES:
        metrics.add_metric(name=METRIC_BACKEND_ERRORS, unit="Count", value=1)
    if not isinstance(path, str) or not path.startswith(WEBHOOK_PATH_PREFIX):
        return
    if 400 <= status < 500:
        metrics.add_metric(name=METRIC_WEBHOOK_REJECTIONS, unit="Count", value=1)
    elif status >= 500:
        metrics.add_metric(name=METRIC_WEBHOOK_ERRORS, unit="Count", value=1)


def tracing_enabled() -> bool:
    """Return whether X-Ray tracing is on: only when POWERTOOLS_TRACE_DISABLED is false.

    Powertools itself traces by default inside Lambda; Lobster keeps tracing off unless
    the operator turns it on, because X-Ray is billed per trace.
    """
    return os.environ.get(TRACE_DISABLED_VARIABLE, "true").strip().lower() not in _TRUE_WORDS


def start_tracing() -> None:
    """Patch boto3, botocore and requests so X-Ray shows each AWS and provider call.

    Does nothing, and imports no X-Ray code, while tracing is off.
    """
    if not tracing_enabled():
        return
    from aws_lambda_powertools import Tracer

    Tracer(service=SERVICE)
    logger.info("tracing_enabled")
