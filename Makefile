# Lobster developer commands. `make run` and `make test` do all set-up on a fresh machine.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
HOUR ?=
LOCAL_ENV := LOBSTER_STAGE=local LOBSTER_DYNAMODB_ENDPOINT=http://127.0.0.1:8001 LOBSTER_TABLE_PREFIX=lobster-local- \
	AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1

.PHONY: run test check lint bill admin reconcile bench package infra clean

# chalice 1.34 declares pip<26.3 and builds the Lambda package with pip, so pip stays below 26.3.
$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is required"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "pip<26.3"
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	@command -v java >/dev/null || { echo "Java 17 or newer is required to run DynamoDB Local"; exit 1; }
	@command -v npm >/dev/null || { echo "Node.js 20 or newer (with npm) is required"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: $(STAMP) $(NODE_STAMP)
	$(PY) -m tools.local_run

# The browser tests drive Debian's Chromium; install it when it is missing (needs root or sudo).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "install Chromium at $(CHROMIUM) for the browser tests"; exit 1; }
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

test: $(STAMP) $(NODE_STAMP) $(CHROMIUM)
	$(PY) -m pytest -q -n auto --dist loadgroup

check: lint test

lint: $(STAMP)
	$(VENV)/bin/ruff check chalicelib tests tools bench app.py
	$(VENV)/bin/mypy

bill: $(STAMP)
	$(LOCAL_ENV) $(PY) -m tools.cli bill $(if $(HOUR),--hour $(HOUR),)

# `make admin EMAIL=root@example.com` creates an admin account in the `make run` tables.
admin: $(STAMP)
	@test -n "$(EMAIL)" || { echo "usage: make admin EMAIL=address"; exit 2; }
	$(LOCAL_ENV) $(PY) -m tools.cli create-admin --email $(EMAIL)

reconcile: $(STAMP)
	$(LOCAL_ENV) $(PY) -m tools.cli reconcile

bench: $(STAMP) $(NODE_STAMP)
	$(PY) -m bench.billing

infra: $(STAMP)
	LOBSTER_STAGE=prod $(PY) -m tools.infra

package: $(STAMP)
	rm -rf build/package
	AWS_DEFAULT_REGION=us-east-1 $(VENV)/bin/chalice package --stage prod --merge-template infra/template.json build/package

clean:
	rm -rf build .pytest_cache

# Deployment: `make deploy STAGE=prod DEPLOY_BUCKET=... ALARM_EMAIL=...` (docs/operations.md).
STAGE ?= prod
STACK ?= lobster-$(STAGE)
DEPLOY_BUCKET ?=
ALARM_EMAIL ?=
# JSON for the Gateways parameter (LOBSTER_GATEWAYS); passed in single quotes, so it keeps its own.
GATEWAYS ?=
# Further Key=Value stack parameters, such as Tracing=enabled.
DEPLOY_PARAMETERS ?=
LAMBDA_BUILD := build/lambda

.PHONY: lambda-package deploy coldstart

lambda-package: $(STAMP)
	LOBSTER_STAGE=prod $(PY) -m tools.lambda_package $(LAMBDA_BUILD)

deploy: lambda-package
	@test "$(STAGE)" = prod || { echo "only STAGE=prod is configured (.chalice/config.json, tools/infra.py)"; exit 2; }
	@test -n "$(DEPLOY_BUCKET)" || { echo "set DEPLOY_BUCKET to an S3 bucket in the target region for the code"; exit 2; }
	@command -v aws >/dev/null || { echo "the AWS CLI (aws) is required to deploy"; exit 2; }
	aws cloudformation package --template-file $(LAMBDA_BUILD)/sam.json --s3-bucket $(DEPLOY_BUCKET) \
		--output-template-file $(LAMBDA_BUILD)/packaged.json --use-json
	aws cloudformation deploy --template-file $(LAMBDA_BUILD)/packaged.json --stack-name $(STACK) \
		--capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
		$(if $(ALARM_EMAIL)$(GATEWAYS)$(DEPLOY_PARAMETERS),--parameter-overrides) \
		$(if $(ALARM_EMAIL),AlarmEmail=$(ALARM_EMAIL)) $(if $(GATEWAYS),'Gateways=$(GATEWAYS)') $(DEPLOY_PARAMETERS)

coldstart: $(STAMP)
	$(PY) -m bench.coldstart
