# The two commands a user needs: `make up` runs the stack, `make test` checks everything.
# Both create .venv and install what is missing first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Pinned so that a fresh machine takes the local CPU wheel, never several GB of CUDA packages.
TORCH := torch==2.13.0
# dstack's own configuration parser checks templates/dstack/ (tests/templates). dstack pins many
# packages of its own, so it lives in a venv apart from ours, made only when asked (CI does).
DSTACK_VENV := .venv-dstack
DSTACK := dstack==0.22.5

.PHONY: install dstack-env up test lint typecheck unit integration e2e faults soak coverage fuzz clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	# The `text-generation` client pins huggingface-hub<1.0, which transformers 5 cannot use;
	# the compatibility tests only need its pydantic models and HTTP code.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps text-generation==0.7.0
	# Vast's own client: its serverless client and PyWorker (the Vast compatibility tests) and its
	# REST client (against our fake Vast API in the vastai provider's tests). It pins exact
	# releases of cryptography, pillow and pycares that clash with ours; what it really needs
	# (requests, pycryptodome, psutil, python-dateutil) is in the dev extra.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps vastai==1.9.1
	touch $(STAMP)

dstack-env: $(DSTACK_VENV)/.installed

$(DSTACK_VENV)/.installed: Makefile
	test -x $(DSTACK_VENV)/bin/python || $(PYTHON) -m venv $(DSTACK_VENV)
	$(DSTACK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(DSTACK)
	touch $@

up: $(STAMP)
	$(BIN)/tgi-serverless up $(ARGS)

# Branch coverage of the whole suite, held above the floor in pyproject.toml ([tool.coverage.report]).
# The fault suite runs apart (`make faults`, also in CI): it kills and stalls processes on purpose.
test: lint typecheck
	$(BIN)/python -m pytest -q --cov --cov-report= --ignore=tests/faults

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache  # the import rules: [tool.importlinter] in pyproject.toml

typecheck: $(STAMP)
	$(BIN)/mypy --strict .

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

e2e: $(STAMP)
	$(BIN)/python -m pytest -q tests/e2e

# Faults injected into a running stack (docs/reliability.md, Faults): each case prints what it
# measured. Some need root (network namespaces, tmpfs mounts) and say so when skipped.
faults: $(STAMP)
	$(BIN)/python -m pytest -q -s tests/faults

# The soak (docs/reliability.md, Soak): `up --workers 2`, its capacity measured by the bench,
# then SOAK_SECONDS at 80 % of it and a verdict (requests lost, RSS, fds, p99 drift); exit 1 when
# it fails. Minutes long: not part of `make test`.
SOAK_SECONDS ?= 600
soak: $(STAMP)
	$(BIN)/python -m soak --seconds $(SOAK_SECONDS)

# Coverage-guided fuzzing (atheris) of each target in fuzz/run.py for FUZZ_SECONDS; a crash
# stops it, its input kept in fuzz/regressions/ (docs/reliability.md). `make test` runs each
# target for a few seconds (tests/unit/fuzz).
FUZZ_SECONDS ?= 300
FUZZ_TARGETS = $(shell $(BIN)/python -c 'from fuzz.run import TARGETS; print(*TARGETS)')
fuzz: $(STAMP)
	for target in $(FUZZ_TARGETS); do \
		$(BIN)/python -m fuzz $$target --seconds $(FUZZ_SECONDS) || exit 1; \
	done

# Where the last `make test` left lines and branches unrun (needs its .coverage file).
coverage: $(STAMP)
	$(BIN)/coverage report
	$(BIN)/coverage html -q && echo "open htmlcov/index.html"

clean:
	rm -rf $(VENV) $(DSTACK_VENV) .fuzz-corpus build *.egg-info .mypy_cache .pytest_cache .ruff_cache .coverage htmlcov
