"""`make run`: DynamoDB Local with data under .data/, tables, the demo seed, the API on
127.0.0.1:8000 through `chalice local`, and the scheduled handlers on a local schedule.

Ctrl-C stops everything this process started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".data"
DYNAMODB_PORT = 8001
API_HOST, API_PORT = "127.0.0.1", 8000
TICK_SECONDS = 20

LOCAL_ENV = {
    "LOBSTER_STAGE": "local",
    "LOBSTER_DYNAMODB_ENDPOINT": f"http://127.0.0.1:{DYNAMODB_PORT}",
    "LOBSTER_TABLE_PREFIX": "lobster-local-",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _stop_on_signal(signum: int, frame: object) -> None:
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
    try:
        _prepare_tables()
        api = subprocess.Popen(
            [str(Path(sys.executable).with_name("chalice")), "local", "--no-autoreload", "--host", API_HOST, "--port", str(API_PORT), "--stage", "local"],
            cwd=ROOT,
            env=os.environ.copy(),
        )
        print(f"Lobster is serving on http://{API_HOST}:{API_PORT}/ (DynamoDB Local on port {DYNAMODB_PORT}); Ctrl-C stops it")
        _run_schedules(api)
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        if api is not None and api.poll() is None:
            api.terminate()
            try:
                api.wait(timeout=10)
            except subprocess.TimeoutExpired:
                api.kill()
        database.stop()
    return 0


def _prepare_tables() -> None:
    from tools.seed import seed_demo
    from tools.tables import create_tables

    created = create_tables()
    print("tables created:", ", ".join(created) if created else "none (kept existing data)")
    seed_demo()


def _run_schedules(api: subprocess.Popen[bytes]) -> None:
    """Call the scheduled handlers when their EventBridge schedule would fire."""
    import app
    from chalicelib import clock
    from chalicelib.billing.jobs import HOURLY_SCHEDULE_MINUTE, scheduled_event

    next_hourly = clock.floor_hour(clock.now()) + timedelta(minutes=HOURLY_SCHEDULE_MINUTE)
    if next_hourly <= clock.now():
        next_hourly += clock.HOUR

    while api.poll() is None:
        moment = clock.now()
        if moment >= next_hourly:
            result = app.hourly_billing(scheduled_event(moment, "hourly_billing"), None)
            print(f"hourly billing ran at {clock.iso(moment)}: {result}")
            next_hourly += clock.HOUR
        time.sleep(TICK_SECONDS)
    raise RuntimeError(f"chalice local exited with code {api.returncode}")


if __name__ == "__main__":
    sys.exit(main())
