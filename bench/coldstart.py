"""Cold-start benchmark: import time of `app` per Lambda entry point, and package size.

Builds the deployment package with tools.lambda_package (`chalice package --stage prod` on
a staged copy), unzips it, and for each function starts fresh Python processes with that
function's environment from .chalice/config.json, timing `import app` as Lambda's init
phase does. The package directory comes first on sys.path; boto3 and botocore come from
.venv, standing in for the ones the Lambda runtime provides. Bytecode writes are off,
because Lambda's /var/task is read-only.

    python -m bench.coldstart [--runs 15] [--no-compile] [--package build/lambda]

The output ends with one `name=value` line per figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG_PATH = ROOT / ".chalice" / "config.json"
STAGE = "prod"
API_FUNCTION = "api_handler"
DEFAULT_RUNS = 15
# Prints the wall-clock and the CPU seconds of `import app`. On a loaded machine the wall
# time grows with the wait for a core, while the CPU time stays close to an idle machine's.
IMPORT_SNIPPET = (
    "import time\n"
    "wall, cpu = time.perf_counter(), time.process_time()\n"
    "import app\n"
    "print(time.perf_counter() - wall, time.process_time() - cpu)\n"
)
# Targets on the benchmark machine; see bench/README.md.
TARGET_MS = {API_FUNCTION: 300, "billing_worker": 250}
TARGET_ZIP_MB = 10


def function_names() -> list[str]:
    import app

    return [API_FUNCTION, *sorted(source.name for source in app.app.event_sources)]


def function_environment(name: str, package_dir: Path) -> dict[str, str]:
    """Return the variables Lambda sets for `name`: the stage's, the function's and the runtime's own."""
    stage = json.loads(CONFIG_PATH.read_text())["stages"][STAGE]
    variables = dict(stage.get("environment_variables", {}))
    variables.update(stage.get("lambda_functions", {}).get(name, {}).get("environment_variables", {}))
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(package_dir),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(package_dir),
        "AWS_LAMBDA_FUNCTION_NAME": f"lobster-{STAGE}-{name}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        **variables,
    }


def time_imports(name: str, package_dir: Path, runs: int) -> tuple[float, float]:
    """Return the median wall-clock and CPU seconds of `import app` over `runs` fresh processes."""
    environment = function_environment(name, package_dir)
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-c", IMPORT_SNIPPET],
            cwd=package_dir,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        wall, cpu = result.stdout.strip().splitlines()[-1].split()
        walls.append(float(wall))
        cpus.append(float(cpu))
    return statistics.median(walls), statistics.median(cpus)


def build_package(output: Path, compile_pyc: bool) -> Path:
    from tools.lambda_package import build

    return build(output, compile_pyc=compile_pyc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure cold-start import time and package size")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="fresh processes per entry point")
    parser.add_argument("--no-compile", action="store_true", help="package sources without precompiled bytecode")
    parser.add_argument("--package", type=Path, help="use this built package directory instead of building one")
    args = parser.parse_args(argv)

    output = ROOT / "build" / ("lambda-source" if args.no_compile else "lambda")
    package = (args.package / "deployment.zip") if args.package else build_package(output, not args.no_compile)
    figures: dict[str, str] = {"package_zip_mb": f"{package.stat().st_size / 1e6:.2f}"}

    with tempfile.TemporaryDirectory(prefix="lobster-coldstart-") as directory:
        package_dir = Path(directory)
        with zipfile.ZipFile(package) as archive:
            archive.extractall(package_dir)
            figures["package_unzipped_mb"] = f"{sum(item.file_size for item in archive.infolist()) / 1e6:.2f}"
        for name in function_names():
            wall, cpu = time_imports(name, package_dir, args.runs)
            figures[f"import_ms_{name}"] = f"{wall * 1000:.0f}"
            figures[f"import_cpu_ms_{name}"] = f"{cpu * 1000:.0f}"
            print(f"{name}: median import of app {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU, {args.runs} processes", file=sys.stderr)

    figures["bytecode"] = "source-only" if args.no_compile else "precompiled"
    # Other processes slow every import; a figure taken under load is not comparable.
    figures["load_average_1m"] = f"{os.getloadavg()[0]:.1f}"
    for name, value in figures.items():
        print(f"{name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
