"""Sending notices: Amazon SES on AWS, SMTP on 127.0.0.1 locally, and a memory outbox in
tests. A failed send is logged and counted, never allowed to undo a billing step.
"""

from __future__ import annotations

import os
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from chalicelib.config import settings
from chalicelib.log import logger, metrics
from chalicelib.notify.templates import render

FROM_ADDRESS = os.environ.get("LOBSTER_MAIL_FROM", "Lobster <billing@lobster.invalid>")
SMTP_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class SentNotice:
    to: str
    template: str
    subject: str
    body: str


# Notices sent in the test stage, newest last.
outbox: list[SentNotice] = []


def send_notice(to: str, template: str, context: dict[str, object]) -> None:
    subject, body = render(template, context)
    try:
        _deliver(to, subject, body)
    except Exception as error:  # noqa: BLE001 - a mail outage must not stop billing
        logger.error("notice_failed", extra={"template": template, "error": str(error)})
        metrics.add_metric(name="NoticeFailures", unit="Count", value=1)
        return
    if settings().stage == "test":
        outbox.append(SentNotice(to, template, subject, body))
    logger.info("notice_sent", extra={"template": template})


def _deliver(to: str, subject: str, body: str) -> None:
    stage = settings().stage
    if stage == "test":
        return
    if stage == "local":
        _send_smtp(to, subject, body)
        return
    import boto3

    boto3.client("ses").send_email(
        Source=FROM_ADDRESS,
        Destination={"ToAddresses": [to]},
        Message={"Subject": {"Data": subject}, "Body": {"Text": {"Data": body}}},
    )


def _send_smtp(to: str, subject: str, body: str) -> None:
    host = os.environ.get("LOBSTER_SMTP_HOST", "127.0.0.1")
    port = int(os.environ.get("LOBSTER_SMTP_PORT", "1025"))
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = FROM_ADDRESS, to, subject
    message.set_content(body)
    with smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        smtp.send_message(message)
