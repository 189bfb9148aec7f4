"""A cold start imports no provider code: importing the app and every API module in a
fresh interpreter loads no backend module, no Libcloud and no payment gateway module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.backends.registry import BACKEND_CLASSES

REPOSITORY = Path(__file__).resolve().parent.parent
IMPORT_TIMEOUT_SECONDS = 60
GATEWAY_MODULES = ("chalicelib.payments.paypal", "chalicelib.payments.coinbase", "chalicelib.payments.stripe_gateway")
# Imports what a Lambda cold start imports, then prints the names of the loaded modules.
COLD_START = """
import importlib, json, pkgutil, sys
import app
import chalicelib.api
for module in pkgutil.iter_modules(chalicelib.api.__path__):
    importlib.import_module(f"chalicelib.api.{module.name}")
print(json.dumps(sorted(sys.modules)))
"""


@pytest.fixture(scope="module", params=["prod", "local"])
def loaded_modules(request: pytest.FixtureRequest) -> set[str]:
    environment = {**os.environ, "LOBSTER_STAGE": request.param, "PYTHONPATH": str(REPOSITORY)}
    completed = subprocess.run(
        [sys.executable, "-c", COLD_START],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


def test_cold_start_imports_every_api_module(loaded_modules: set[str]) -> None:
    assert {"app", "chalicelib.api.vms", "chalicelib.api.catalog", "chalicelib.backends.registry"} <= loaded_modules


def test_cold_start_loads_no_backend_module(loaded_modules: set[str]) -> None:
    backend_modules = {target.split(":")[0] for target in BACKEND_CLASSES.values()}

    assert sorted(backend_modules & loaded_modules) == []


def test_cold_start_loads_no_libcloud(loaded_modules: set[str]) -> None:
    assert sorted(name for name in loaded_modules if name == "libcloud" or name.startswith("libcloud.")) == []


def test_cold_start_loads_no_gateway_module(loaded_modules: set[str]) -> None:
    assert sorted(set(GATEWAY_MODULES) & loaded_modules) == []
