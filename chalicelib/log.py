"""The process-wide Powertools logger and metrics, with one fixed service name.

Business events are logged at INFO with ids and amounts as keys; secrets and whole
webhook bodies are never logged.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

SERVICE = "lobster"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="Lobster", service=SERVICE)
