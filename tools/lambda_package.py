"""Build the Lambda deployment package without the AWS SDK that the Lambda runtime ships.

`chalice package` installs requirements.txt with all its dependencies, so boto3, botocore
and s3transfer, about 16 MB of a 23 MB zip, would ship although every Lambda Python
runtime provides them. This builder stages a copy of the app with no requirements.txt,
installs requirements-lambda.txt (every runtime dependency pinned, minus those three) into
the stage's vendor/ with `pip --no-deps` for Lambda's platform, precompiles the bytecode,
and runs `chalice package` there.

    python -m tools.lambda_package [OUTPUT_DIR] [--no-compile]
"""

from __future__ import annotations

import argparse
import compileall
import os
import py_compile
import re
import shutil
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"
LAMBDA_REQUIREMENTS = ROOT / "requirements-lambda.txt"
MERGE_TEMPLATE = ROOT / "infra" / "template.json"
DEFAULT_OUTPUT = ROOT / "build" / "lambda"
STAGE_DIR = ROOT / "build" / "lambda-stage"
STAGE = "prod"
# Distributions in every Lambda Python runtime (AWS documents "Runtime-included SDK
# versions" per runtime). Their versions follow the runtime, not requirements.txt.
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})
# Wheels for glibc 2.26 and older: python3.11 runs on Amazon Linux 2, whose glibc is 2.26.
# pip does not widen one manylinux tag to older ones, so each is listed.
LAMBDA_PLATFORMS = (
    "manylinux_2_26_x86_64",
    "manylinux_2_24_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux_2_12_x86_64",
    "manylinux2010_x86_64",
    "manylinux_2_5_x86_64",
    "manylinux1_x86_64",
)
# Directories inside wheels that no function imports: Libcloud ships its test suite.
UNUSED_DIRECTORIES = ("libcloud/test",)
# Packages left as source: Libcloud loads only for a region on the generic Libcloud backend,
# and its bytecode would add about 2 MB to the zip for a one-time compile in those workers.
SOURCE_ONLY_PACKAGES = ("libcloud",)
APP_FILES = ("app.py",)
APP_DIRECTORIES = ("chalicelib",)
CHALICE_FILES = (".chalice/config.json", ".chalice/policy-prod.json")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure() -> dict[str, str]:
    """Return every distribution requirements.txt needs at run time, with the version
    installed in this environment, which is the version the tests ran against."""
    from packaging.requirements import Requirement

    roots = [Requirement(line).name for line in _requirement_lines(REQUIREMENTS)]
    found: dict[str, str] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        key = canonical(name)
        if key in found:
            continue
        try:
            installed = distribution(name)
        except PackageNotFoundError:
            raise SystemExit(f"{name} is not installed; run `make test` once to create .venv") from None
        found[key] = installed.version
        for text in installed.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return found


def lambda_requirement_problems() -> list[str]:
    """Differences between requirements-lambda.txt and the runtime closure minus the SDK."""
    expected = {name: version for name, version in runtime_closure().items() if name not in RUNTIME_PROVIDED}
    pinned: dict[str, str] = {}
    for line in _requirement_lines(LAMBDA_REQUIREMENTS):
        name, _, version = line.partition("==")
        pinned[canonical(name)] = version

    problems = [f"{name}=={version} is missing" for name, version in sorted(expected.items()) if name not in pinned]
    problems += [f"{name} is pinned to {pinned[name]}, installed {version}" for name, version in sorted(expected.items()) if name in pinned and pinned[name] != version]
    problems += [f"{name} is not a runtime dependency" for name in sorted(pinned) if name not in expected]
    return problems


def _requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def stage_app(stage_dir: Path) -> None:
    """Copy the app into `stage_dir` without requirements.txt, so Chalice installs nothing."""
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True)
    for name in APP_FILES + CHALICE_FILES:
        (stage_dir / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, stage_dir / name)
    for name in APP_DIRECTORIES:
        shutil.copytree(ROOT / name, stage_dir / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def install_vendor(stage_dir: Path) -> None:
    """Install the pinned Lambda requirements for Lambda's platform and Python into vendor/."""
    vendor = stage_dir / "vendor"
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    platforms = [option for platform in LAMBDA_PLATFORMS for option in ("--platform", platform)]
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", "--only-binary=:all:",
        *platforms, "--implementation", "cp", "--python-version", python_version,
        "--target", str(vendor), "-r", str(LAMBDA_REQUIREMENTS),
    ]
    subprocess.run(command, check=True)
    for name in UNUSED_DIRECTORIES:
        shutil.rmtree(vendor / name, ignore_errors=True)
    shutil.rmtree(vendor / "bin", ignore_errors=True)


def compile_bytecode(stage_dir: Path) -> None:
    """Precompile every module to unchecked-hash .pyc files for this Python version.

    Lambda's /var/task is read-only, so without them every cold start compiles each
    imported module again. Unchecked-hash files are used without comparing source times,
    which a zip does not keep exactly. The .pyc files match only the Python that built
    them, and Chalice picks the runtime from that same Python (python3.11 from 3.11).
    """
    quiet = 1
    skipped = re.compile("|".join(rf"[/\\]vendor[/\\]{re.escape(name)}[/\\]" for name in SOURCE_ONLY_PACKAGES))
    for name in ("vendor", *APP_DIRECTORIES):
        compileall.compile_dir(stage_dir / name, quiet=quiet, rx=skipped, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    for name in APP_FILES:
        compileall.compile_file(stage_dir / name, quiet=quiet, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    _compile_chalice_runtime(stage_dir / "vendor")


def _compile_chalice_runtime(vendor: Path) -> None:
    """Chalice adds its own app.py and __init__.py to the zip; their .pyc go in through vendor/."""
    import importlib.util

    import chalice
    import chalice.app

    for module in (chalice, chalice.app):
        source = Path(module.__file__ or "")
        target = vendor / "chalice" / importlib.util.cache_from_source(source.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        py_compile.compile(str(source), cfile=str(target), dfile=f"chalice/{source.name}", doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def run_chalice_package(stage_dir: Path, output: Path) -> None:
    if output.exists():
        shutil.rmtree(output)
    chalice = Path(sys.executable).with_name("chalice")
    command = [str(chalice), "package", "--stage", STAGE, "--merge-template", str(MERGE_TEMPLATE), str(output)]
    # Chalice needs a region to name ARNs while packaging; the deployed stack uses its own.
    environment = {"AWS_DEFAULT_REGION": "us-east-1", **os.environ}
    subprocess.run(command, cwd=stage_dir, check=True, env=environment)


def build(output: Path = DEFAULT_OUTPUT, *, compile_pyc: bool = True) -> Path:
    """Build sam.json and deployment.zip in `output`; return the zip's path."""
    problems = lambda_requirement_problems()
    if problems:
        raise SystemExit("requirements-lambda.txt is out of date: " + "; ".join(problems))
    stage_app(STAGE_DIR)
    install_vendor(STAGE_DIR)
    if compile_pyc:
        compile_bytecode(STAGE_DIR)
    run_chalice_package(STAGE_DIR, output)
    return output / "deployment.zip"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Lambda package without the runtime's AWS SDK")
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT, help="directory for sam.json and deployment.zip")
    parser.add_argument("--no-compile", action="store_true", help="ship sources only, without precompiled .pyc files")
    args = parser.parse_args(argv)

    package = build(args.output.resolve(), compile_pyc=not args.no_compile)
    print(f"wrote {package} ({package.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
