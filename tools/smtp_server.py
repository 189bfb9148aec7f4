"""A local SMTP server for `make run` and the e-mail tests: it accepts every message on
127.0.0.1 and stores it as an .eml file, delivering nothing onward.

Each message is written whole before the server replies 250, and a one-line summary is
printed, with the decoded panel link of a verification or reset e-mail. Usage: python -m tools.smtp_server [--port 1025] [--mail-dir .data/mail]
"""

from __future__ import annotations

import argparse
import email
import email.policy
import itertools
import re
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DEFAULT_PORT = 1025
DEFAULT_MAIL_DIR = ROOT / ".data" / "mail"
READY_LINE = "SMTP server listening on"
PANEL_LINK = re.compile(r"https?://\S+/#/(?:verify|reset)\?token=\S+")


class MailDirectoryHandler:
    """aiosmtpd handler that writes each accepted message to `<mail dir>/<time>-<n>.eml`."""

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        content = envelope.original_content or envelope.content
        with self._lock:
            number = next(self._numbers)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        path = self.mail_dir / f"{stamp}-{number:04d}.eml"
        temporary = path.with_suffix(".part")
        temporary.write_bytes(content)
        temporary.replace(path)

        message = email.message_from_bytes(content, policy=email.policy.default)
        recipients = ", ".join(envelope.rcpt_tos)
        print(f"mail to {recipients}: {message['Subject']} ({path.name})", flush=True)
        for link in panel_links(message):
            print(f"  open: {link}", flush=True)
        return "250 Message accepted for delivery"


def panel_links(message: email.message.EmailMessage) -> list[str]:
    """Return the panel links (verification, password reset) in a message's decoded text, which
    the stored .eml file shows only in its transfer encoding."""
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    return PANEL_LINK.findall(text)


def start(port: int = DEFAULT_PORT, mail_dir: Path = DEFAULT_MAIL_DIR) -> Controller:
    """Start the server on a background thread; the caller stops it with `.stop()`."""
    mail_dir.mkdir(parents=True, exist_ok=True)
    controller = Controller(MailDirectoryHandler(mail_dir), hostname=HOST, port=port)
    controller.start()
    return controller


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port on {HOST} (default {DEFAULT_PORT})")
    parser.add_argument("--mail-dir", type=Path, default=DEFAULT_MAIL_DIR, help="directory for the .eml files (default .data/mail)")
    arguments = parser.parse_args(argv)

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopped.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stopped.set())

    controller = start(arguments.port, arguments.mail_dir)
    print(f"{READY_LINE} {HOST}:{arguments.port}; messages go to {arguments.mail_dir}", flush=True)
    try:
        stopped.wait()
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
