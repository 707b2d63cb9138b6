# Two commands for a fresh machine: `make run` (serve the demo) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/slrweb
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15
# Coverage of slrweb and screening (in-process, live-server threads included; the Celery worker
# subprocesses are not counted). The floor is the figure measured on 2026-11-29 (94.88 %),
# rounded down (README). A partial run (PYTEST_ARGS=-k ...) passes COVERAGE= to skip it.
COVERAGE ?= --cov=slrweb --cov=screening --cov-report=term:skip-covered --cov-fail-under=94
# The suite in one pytest-xdist process per core, each with its own test database, Chromium and
# Celery queue; a test file stays in one process (its module fixtures are built once).
# PYTEST_WORKERS=0 runs it in this process.
PYTEST_WORKERS ?= auto
# Production-like settings for `check --deploy` (values are throwaway, only checked for shape).
DEPLOY_ENV := DEBUG=0 SECRET_KEY=check-deploy-$$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n') \
	ALLOWED_HOSTS=slrweb.example.org DATABASE_URL=$(TEST_DATABASE_URL)

.PHONY: install run test lint typecheck lock test-production test-embedded

# The locked versions (requirements.lock) as constraints, the same the image installs.
$(VENV)/.installed: pyproject.toml requirements.lock
	command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --constraint requirements.lock -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Production settings on 127.0.0.1:8000: gunicorn, DEBUG off, a worker with beat.
run: install
	scripts/run-embedded

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy with django-stubs over slrweb/ and screening/, strict on domain/, services/, selectors/
# (configuration in pyproject.toml).
typecheck: install
	$(VENV)/bin/mypy

# Pin every dependency anew from pyproject.toml's bounds, in a throwaway virtualenv.
lock:
	rm -rf $(VENV)-lock
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet '.[test]'
	{ sed -n '1,2p' requirements.lock; $(VENV)-lock/bin/pip freeze --exclude-editable \
		| grep -v '^slrweb @'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	rm -rf $(VENV)-lock

# The end-to-end browser runs against a served slrweb (tests/test_production_e2e.py).
test-production: install
	scripts/ci-production

test-embedded: install
	scripts/ci-embedded

test: install lint typecheck
	scripts/services-up
	scripts/browser-deps
	DATABASE_URL=$(TEST_DATABASE_URL) $(PY) manage.py makemigrations --check --dry-run
	$(DEPLOY_ENV) $(PY) manage.py check --deploy --fail-level WARNING
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(COVERAGE) $(PYTEST_ARGS)
	scripts/ci-embedded
	scripts/ci-production
