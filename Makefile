# Two entry points for a fresh machine (Python 3.11+, PostgreSQL reachable on 127.0.0.1:5432):
#   make demo   set everything up, then run the demo
#   make test   set everything up, then run lint, types and the whole test suite
# .ci/run calls `make test`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The lowest SQLAlchemy pyproject.toml admits; the suite runs on it too.
SQLALCHEMY_FLOOR := $(shell sed -n 's/.*"sqlalchemy\[asyncio\]>=\([0-9.]*\),.*/\1/p' pyproject.toml)
FLOOR  := .floor/sqlalchemy-$(SQLALCHEMY_FLOOR)

.PHONY: demo test test-floor test-example setup services lint

demo: setup services
	$(BIN)/tenancy demo

test: setup services lint
	$(BIN)/pytest
	$(MAKE) test-floor
	$(MAKE) test-example

# The example service, as a user would have it: the wheel built from this
# checkout, installed (not editable) into a fresh virtualenv, and the service's
# own tests run from its folder, the shipped isolation plugin included.
EXAMPLE      := examples/invoicing
EXAMPLE_VENV := .example-venv

test-example: services
	rm -rf dist $(EXAMPLE_VENV)
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir dist .
	$(PYTHON) -m venv $(EXAMPLE_VENV)
	$(EXAMPLE_VENV)/bin/pip install --quiet "$$(ls dist/tenancy-*.whl)[web]" "pytest>=8" "pytest-asyncio>=0.23" "httpx>=0.27"
	cd $(EXAMPLE) && ../../$(EXAMPLE_VENV)/bin/pytest

# The same suite with the declared SQLAlchemy floor first on the path.
test-floor: setup services $(FLOOR)/.installed
	PYTHONPATH=$(FLOOR) $(BIN)/pytest -p no:cacheprovider

$(FLOOR)/.installed:
	$(BIN)/pip install --quiet --no-deps --target $(FLOOR) "sqlalchemy==$(SQLALCHEMY_FLOOR)"
	touch $@

lint:
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

# PostgreSQL must be running; pgbouncer (Debian package) is needed by the pooler tests,
# the Citus extension (../shared/citus, idempotent) by the scale-out tests.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
	@test -x /usr/sbin/pgbouncer || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null)
	@bash ../shared/citus/install.sh
