"""The deployable stack: generated files are current, the packaged template passes
cfn-lint, and the IAM policy names exact tables and queues, never "*"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools import infra

ROOT = Path(__file__).resolve().parent.parent


def test_committed_template_matches_models() -> None:
    assert infra.TEMPLATE_PATH.read_text() == infra.render(infra.build_template()), "run `python -m tools.infra`"


def test_committed_policy_matches_models() -> None:
    assert infra.POLICY_PATH.read_text() == infra.render(infra.build_policy()), "run `python -m tools.infra`"


def test_policy_grants_no_wildcard_on_tables_or_queues() -> None:
    policy = json.loads(infra.POLICY_PATH.read_text())

    for statement in policy["Statement"]:
        actions = statement["Action"]
        resources = statement["Resource"]
        assert "*" not in resources
        if any(action.startswith(("dynamodb:", "sqs:")) for action in actions):
            assert all(not resource.endswith(":*") and "table/*" not in resource for resource in resources)


def test_money_tables_have_recovery_and_deletion_protection() -> None:
    resources = infra.build_template()["Resources"]

    for logical_id in ("AccountsTable", "LedgerTable", "PaymentsTable"):
        properties = resources[logical_id]["Properties"]
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert properties["DeletionProtectionEnabled"] is True


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("package")
    chalice = Path(sys.executable).with_name("chalice")
    subprocess.run(
        [str(chalice), "package", "--stage", "prod", "--merge-template", "infra/template.json", str(output)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return output


def test_packaged_template_passes_cfn_lint(packaged: Path) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(packaged / "sam.json")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_packaged_functions_use_the_explicit_policy(packaged: Path) -> None:
    template = json.loads((packaged / "sam.json").read_text())
    expected = json.loads(infra.POLICY_PATH.read_text())

    roles = [resource for resource in template["Resources"].values() if resource["Type"] == "AWS::IAM::Role"]
    assert roles
    for role in roles:
        documents = [policy["PolicyDocument"] for policy in role["Properties"]["Policies"]]
        assert expected in documents
