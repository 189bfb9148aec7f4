"""The deployable stack: generated files are current, the packaged template passes
cfn-lint, and the IAM policy names exact tables and queues, never "*"."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
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


def test_policy_allows_billing_statements() -> None:
    policy = json.loads(infra.POLICY_PATH.read_text())
    granted = {
        (action, resource)
        for statement in policy["Statement"]
        for action in statement["Action"]
        for resource in statement["Resource"]
    }

    assert ("dynamodb:PartiQLInsert", "arn:aws:dynamodb:*:*:table/lobster-prod-ledger") in granted
    assert ("dynamodb:PartiQLUpdate", "arn:aws:dynamodb:*:*:table/lobster-prod-accounts") in granted


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


def test_package_serves_every_panel_file(packaged: Path) -> None:
    from chalicelib.api.panel import STATIC_DIR, served_files

    with zipfile.ZipFile(packaged / "deployment.zip") as archive:
        shipped = {Path(name).name for name in archive.namelist() if name.startswith("chalicelib/panel/static/")}

    assert "index.html" in shipped
    assert shipped == served_files()
    assert served_files() == {path.name for path in STATIC_DIR.iterdir() if path.is_file()}


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


def test_each_failure_alarms_the_topic() -> None:
    from tools.alarms import ALARMED_FAILURES

    resources = infra.build_template()["Resources"]

    for logical_id in ALARMED_FAILURES:
        alarm = resources[logical_id]
        assert alarm["Type"] == "AWS::CloudWatch::Alarm", logical_id
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical_id
    subscription = resources["AlarmTopic"]["Properties"]["Subscription"]
    assert subscription == [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]


def test_missing_billing_run_alarm_treats_silence_as_failure() -> None:
    alarm = infra.build_template()["Resources"]["BillingRunMissingAlarm"]["Properties"]

    assert alarm["MetricName"] == "BillingRunPlanned"
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["Period"] * alarm["EvaluationPeriods"] == 2 * 3600


def test_alarmed_metrics_are_the_names_the_code_emits() -> None:
    from chalicelib import log

    emitted = {value for name, value in vars(log).items() if name.startswith("METRIC_")}
    template = json.dumps(infra.build_template())
    alarmed = set(re.findall(r'"MetricName": "([A-Za-z]+)"', template)) - {"ApproximateNumberOfMessagesVisible", "Errors"}

    assert alarmed <= emitted


def test_dead_letter_alarm_watches_the_dead_letter_queue() -> None:
    alarm = infra.build_template()["Resources"]["BillingDeadLetterAlarm"]["Properties"]

    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["BillingDeadLetterQueue", "QueueName"]}}]


def test_short_lived_tables_expire_items() -> None:
    resources = infra.build_template()["Resources"]

    for logical_id in ("AuthTable", "SessionsTable", "JobsTable", "IdempotencyTable", "RateLimitsTable", "AuditTable"):
        assert resources[logical_id]["Properties"]["TimeToLiveSpecification"]["Enabled"] is True, logical_id


def test_audit_table_is_kept_like_money_tables() -> None:
    resources = infra.build_template()["Resources"]

    assert resources["AuditTable"]["DeletionPolicy"] == "Retain"
    assert resources["AuditTable"]["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_tracing_is_off_unless_the_parameter_enables_it(packaged: Path) -> None:
    template = json.loads((packaged / "sam.json").read_text())

    functions = {name: resource for name, resource in template["Resources"].items() if resource["Type"] == "AWS::Serverless::Function"}
    assert set(functions) == {infra.function_logical_id(name) for name in infra.function_names()}
    for name, function in functions.items():
        assert function["Properties"]["Tracing"] == {"Fn::If": ["TracingEnabled", "Active", "PassThrough"]}, name
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["POWERTOOLS_TRACE_DISABLED"] == {"Fn::If": ["TracingEnabled", "false", "true"]}, name
    assert template["Parameters"]["Tracing"]["Default"] == "disabled"


def test_lambda_requirements_match_runtime_dependencies() -> None:
    from tools.lambda_package import RUNTIME_PROVIDED, lambda_requirement_problems

    assert lambda_requirement_problems() == []
    shipped = (ROOT / "requirements-lambda.txt").read_text()
    assert all(f"\n{name}==" not in shipped for name in RUNTIME_PROVIDED)


def test_only_the_api_function_imports_routes(packaged: Path) -> None:
    template = json.loads((packaged / "sam.json").read_text())

    for name in infra.function_names():
        variables = template["Resources"][infra.function_logical_id(name)]["Properties"]["Environment"]["Variables"]
        expected = None if name == infra.API_FUNCTION else "off"
        assert variables.get("LOBSTER_ROUTES") == expected, name


def test_functions_send_mail_only_as_the_configured_identity() -> None:
    policy = infra.build_template()["Resources"]["SendMailPolicy"]["Properties"]

    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == ["ses:SendEmail"]
    assert statement["Resource"]["Fn::Sub"].endswith(":identity/${MailIdentity}")
    assert len(policy["Roles"]) == len(infra.function_names())


def test_gateway_answers_use_the_error_format() -> None:
    resources = infra.build_template()["Resources"]
    responses = {resource["Properties"]["ResponseType"]: resource["Properties"] for resource in resources.values() if resource.get("Type") == "AWS::ApiGateway::GatewayResponse"}

    assert set(responses) == {"MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"}
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    for properties in responses.values():
        body = properties["ResponseTemplates"]["application/json"].replace("$context.error.messageString", '"message"')
        assert set(json.loads(body)["error"]) == {"code", "message", "field"}
