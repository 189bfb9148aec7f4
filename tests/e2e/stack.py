"""The whole product as a browser reaches it: the app served over HTTP on 127.0.0.1 in the local
stage, on the tests' DynamoDB Local with tables of its own, sending e-mail to an SMTP server
on 127.0.0.1 that keeps each message as a file the tests read.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import requests

from tools import dynamodb_local, smtp_server

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60
MAIL_TIMEOUT_SECONDS = 20
# A VM of the demo backend stays "provisioning" this long, so the panel is seen polling it.
DEMO_PROVISION_SECONDS = 4
RATE_LIMIT_TABLE = "rate-limits"
TOKEN_PATTERN = re.compile(r"token:\s+(\S+)")


@dataclass
class Stack:
    mail_dir: Path
    port: int = 0
    env: dict[str, str] = field(default_factory=dict)
    server: subprocess.Popen[bytes] | None = None
    mail: object | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        smtp_port = dynamodb_local.free_port()
        self.port = dynamodb_local.free_port()
        self.env = {
            **os.environ,
            "LOBSTER_STAGE": "local",
            "LOBSTER_TABLE_PREFIX": f"e2e{uuid.uuid4().hex[:6]}-",
            "LOBSTER_SMTP_HOST": "127.0.0.1",
            "LOBSTER_SMTP_PORT": str(smtp_port),
            "LOBSTER_DEMO_PROVISION_SECONDS": str(DEMO_PROVISION_SECONDS),
            "LOBSTER_API_URL": self.url.rstrip("/"),
        }
        self.mail = smtp_server.start(smtp_port, self.mail_dir)
        self.cli("create-tables")
        self.cli("seed")
        self.server = subprocess.Popen([sys.executable, "-m", "tests.e2e.serve", str(self.port)], cwd=ROOT, env=self.env)
        self._wait_until_serving()

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            self.server.wait(timeout=10)
        if self.mail is not None:
            self.mail.stop()  # type: ignore[attr-defined]

    def cli(self, *arguments: str, stdin: str | None = None) -> str:
        """Run `python -m tools.cli` against this stack's tables and return its output."""
        command = [sys.executable, "-m", "tools.cli", *arguments]
        done = subprocess.run(command, cwd=ROOT, env=self.env, input=stdin, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def create_admin(self, email_address: str, password: str) -> None:
        self.cli("create-admin", "--email", email_address, stdin=password + "\n")

    def reset_rate_limits(self) -> None:
        """Delete the stack's rate-limit counters: every browser test comes from 127.0.0.1, so
        without this the tests of one run would share one address's sign-up allowance."""
        client = boto3.client("dynamodb", endpoint_url=self.env["LOBSTER_DYNAMODB_ENDPOINT"], region_name=self.env["AWS_DEFAULT_REGION"])
        table = self.env["LOBSTER_TABLE_PREFIX"] + RATE_LIMIT_TABLE
        for page in client.get_paginator("scan").paginate(TableName=table, ProjectionExpression="counter_key"):
            for item in page["Items"]:
                client.delete_item(TableName=table, Key={"counter_key": item["counter_key"]})

    def mailed_token(self, to: str, subject_part: str) -> str:
        """Wait for the newest message to `to` whose subject contains `subject_part`; return its token."""
        deadline = time.monotonic() + MAIL_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            for path in sorted(self.mail_dir.glob("*.eml"), reverse=True):
                message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                if to in str(message["To"]) and subject_part in str(message["Subject"]):
                    body = message.get_body(preferencelist=("plain",))
                    match = TOKEN_PATTERN.search(body.get_content() if body else "")
                    assert match, f"no token in {path.name}"
                    return match.group(1)
            time.sleep(0.2)
        raise AssertionError(f"no e-mail to {to} about {subject_part!r} within {MAIL_TIMEOUT_SECONDS} seconds")

    def _wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.server is not None and self.server.poll() is None, "the app server exited"
            try:
                if requests.get(self.url + "health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the app did not answer on {self.url} within {START_TIMEOUT_SECONDS} seconds")
