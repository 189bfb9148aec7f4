"""`make run`: DynamoDB Local with data under .data/, tables, the demo seed, an SMTP server
on 127.0.0.1:1025 that keeps mail under .data/mail/, the API on 127.0.0.1:8000 through
chalice local's server (tools/local_server.py), and the scheduled handlers on a local schedule.

Ctrl-C stops everything this process started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".data"
DYNAMODB_PORT = 8001
API_HOST, API_PORT = "127.0.0.1", 8000
TICK_SECONDS = 20
SMTP_PORT = 1025
SMTP_START_SECONDS = 10

LOCAL_ENV = {
    "LOBSTER_STAGE": "local",
    "LOBSTER_DYNAMODB_ENDPOINT": f"http://127.0.0.1:{DYNAMODB_PORT}",
    "LOBSTER_TABLE_PREFIX": "lobster-local-",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
    "LOBSTER_SMTP_HOST": API_HOST,
    "LOBSTER_SMTP_PORT": str(SMTP_PORT),
}


def _stop_on_signal(signum: int, frame: object) -> None:
    # Later signals (make forwards SIGTERM to us, a second Ctrl-C) must not cut the shutdown
    # short, or DynamoDB Local outlives us and blocks the next `make run`.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C and SIGTERM both stop everything, even when a shell started us in the background
    # with SIGINT ignored.
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    os.environ.update({key: value for key, value in LOCAL_ENV.items() if key not in os.environ or key.startswith("LOBSTER_")})
    from tools import dynamodb_local

    if dynamodb_local.is_ready(LOCAL_ENV["LOBSTER_DYNAMODB_ENDPOINT"]):
        print(f"port {DYNAMODB_PORT} is already serving DynamoDB; stop the other `make run` first", file=sys.stderr)
        return 1
    database = dynamodb_local.start(DYNAMODB_PORT, DATA_DIR / "dynamodb", DATA_DIR / "dynamodb.log")
    api: subprocess.Popen[bytes] | None = None
    mail: subprocess.Popen[bytes] | None = None
    try:
        _prepare_tables()
        mail = _start_mail_server()
        api = subprocess.Popen([sys.executable, "-m", "tools.local_server", "--port", str(API_PORT)], cwd=ROOT, env=os.environ.copy())
        print(
            f"Lobster is serving on http://{API_HOST}:{API_PORT}/ (DynamoDB Local on port {DYNAMODB_PORT}, "
            f"mail in {DATA_DIR / 'mail'}); Ctrl-C stops it"
        )
        _run_schedules(api)
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        for process in (api, mail):
            if process is not None:
                _stop_process(process)
        database.stop()
    return 0


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def _start_mail_server() -> subprocess.Popen[bytes]:
    """Start tools.smtp_server and wait until it accepts connections."""
    mail = subprocess.Popen(
        [sys.executable, "-m", "tools.smtp_server", "--port", str(SMTP_PORT), "--mail-dir", str(DATA_DIR / "mail")],
        cwd=ROOT,
    )
    deadline = time.monotonic() + SMTP_START_SECONDS
    while time.monotonic() < deadline:
        if mail.poll() is not None:
            raise RuntimeError(f"the SMTP server exited with code {mail.returncode}; is port {SMTP_PORT} in use?")
        try:
            with socket.create_connection((API_HOST, SMTP_PORT), timeout=1):
                return mail
        except OSError:
            time.sleep(0.2)
    _stop_process(mail)
    raise RuntimeError(f"the SMTP server did not listen on port {SMTP_PORT} within {SMTP_START_SECONDS} seconds")


def _prepare_tables() -> None:
    from tools.seed import seed_demo
    from tools.tables import create_tables

    created = create_tables()
    print("tables created:", ", ".join(created) if created else "none (kept existing data)")
    seed_demo()


def _run_schedules(api: subprocess.Popen[bytes]) -> None:
    """Call the scheduled handlers when their EventBridge schedule would fire: the hourly
    billing at minute 5 of every hour, the monthly rollover on the 1st at 00:15 UTC."""
    import app
    from chalicelib import clock
    from chalicelib.billing.jobs import HOURLY_SCHEDULE_MINUTE, ROLLOVER_SCHEDULE, scheduled_event

    next_hourly = clock.floor_hour(clock.now()) + timedelta(minutes=HOURLY_SCHEDULE_MINUTE)
    if next_hourly <= clock.now():
        next_hourly += clock.HOUR
    next_rollover = _next_rollover(clock.now(), ROLLOVER_SCHEDULE)

    while api.poll() is None:
        moment = clock.now()
        if moment >= next_hourly:
            result = app.hourly_billing(scheduled_event(moment, "hourly_billing"), None)
            print(f"hourly billing ran at {clock.iso(moment)}: {result}")
            next_hourly += clock.HOUR
        if moment >= next_rollover:
            result = app.monthly_rollover(scheduled_event(moment, "monthly_rollover"), None)
            print(f"monthly rollover ran at {clock.iso(moment)}: {result}")
            next_rollover = _next_rollover(moment, ROLLOVER_SCHEDULE)
        time.sleep(TICK_SECONDS)
    raise RuntimeError(f"chalice local exited with code {api.returncode}")


def _next_rollover(moment: datetime, schedule: tuple[int, int, int]) -> datetime:
    """Return the first rollover time after `moment` for (minute, hour, day of month)."""
    from chalicelib import clock

    minute, hour, day = schedule
    candidate = clock.month_start(moment).replace(day=day, hour=hour, minute=minute)
    return candidate if candidate > moment else clock.next_month_start(moment).replace(day=day, hour=hour, minute=minute)


if __name__ == "__main__":
    sys.exit(main())
