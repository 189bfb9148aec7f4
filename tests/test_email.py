"""E-mail over real SMTP: the local stage sends through smtplib to tools.smtp_server, run as
`make run` runs it, and the test reads the delivered .eml file."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app import app
from chalicelib import clock, config
from chalicelib.accounts.verification import api_url
from tests.api_calls import PASSWORD, ApiCaller, token_in
from tools import smtp_server
from tools.dynamodb_local import free_port

pytestmark = pytest.mark.usefixtures("demo_catalog", "clock")

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 10
DELIVERY_SECONDS = 10


@pytest.fixture
def mail_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """Run the SMTP server on a free port and put the app in the local stage, which sends by SMTP."""
    port = free_port()
    mail_dir = tmp_path / "mail"
    server = subprocess.Popen(
        [sys.executable, "-m", "tools.smtp_server", "--port", str(port), "--mail-dir", str(mail_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        ready = server.stdout.readline()
        assert smtp_server.READY_LINE in ready, ready
        monkeypatch.setenv("LOBSTER_STAGE", "local")
        monkeypatch.setenv("LOBSTER_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("LOBSTER_SMTP_PORT", str(port))
        config.reload()
        yield mail_dir, server
    finally:
        monkeypatch.undo()
        config.reload()
        server.terminate()
        server.wait(timeout=START_SECONDS)


def delivered(mail_dir: Path, count: int) -> list[email.message.EmailMessage]:
    """Wait until `count` messages are stored and return them, oldest first."""
    deadline = time.monotonic() + DELIVERY_SECONDS
    while time.monotonic() < deadline:
        paths = sorted(mail_dir.glob("*.eml"))
        if len(paths) >= count:
            return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in paths]
        time.sleep(0.05)
    raise AssertionError(f"expected {count} messages in {mail_dir}, found {len(list(mail_dir.glob('*.eml')))}")


def test_verification_mail_delivered_over_smtp(mail_server: tuple[Path, subprocess.Popen[str]]) -> None:
    mail_dir, server = mail_server
    clock.set_time(datetime(2026, 12, 4, 9, 30, tzinfo=UTC))
    api = ApiCaller(app)

    api.sign_up("ann@example.com")
    [message] = delivered(mail_dir, 1)
    token = token_in(message.get_content())
    verified = api.call("POST", "/v1/auth/verify", {"token": token})

    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "Confirm your Lobster e-mail address"
    assert f"    {api_url()}/#/verify?token={token}" in message.get_content().splitlines()
    assert verified.status == 200
    assert server.stdout is not None
    assert server.stdout.readline().startswith("mail to ann@example.com: Confirm your Lobster e-mail address")
    assert server.stdout.readline() == f"  open: {api_url()}/#/verify?token={token}\n"


def test_reset_mail_delivered_over_smtp(mail_server: tuple[Path, subprocess.Popen[str]]) -> None:
    mail_dir, _ = mail_server
    clock.set_time(datetime(2026, 12, 4, 9, 30, tzinfo=UTC))
    api = ApiCaller(app)
    api.sign_up("ann@example.com")

    api.call("POST", "/v1/auth/reset-request", {"email": "ann@example.com"})
    reset_mail = delivered(mail_dir, 2)[1]
    token = token_in(reset_mail.get_content())
    new_password = "a brand new password"
    reset = api.call(
        "POST",
        "/v1/auth/reset",
        {"token": token, "new_password": new_password, "new_password_confirmation": new_password},
    )

    assert reset_mail["Subject"] == "Reset your Lobster password"
    assert f"    {api_url()}/#/reset?token={token}" in reset_mail.get_content().splitlines()
    assert reset.status == 200
    assert api.call("POST", "/v1/auth/login", {"email": "ann@example.com", "password": PASSWORD}).status == 401
    assert api.log_in("ann@example.com", new_password)
