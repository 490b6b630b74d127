# README's two commands: `make pipeline` (set up, then run the DVC pipeline) and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
# No network here: keep DVC from phoning home and Hugging Face from waiting on a hub.
export DVC_NO_ANALYTICS := 1
# Stages run `python`: make it the project environment's.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup setup-automl pipeline headline test test-fast lint format params tables clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel; an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# LightAutoML is an optional extra (about 1.3 GB): `make setup-automl`, then model=lightautoml works.
setup-automl: setup
	$(BIN)/pip install -q -e '.[test,automl]'

pipeline: setup
	$(BIN)/dvc repro
	$(MAKE) --no-print-directory headline

# The headline across experiments in 80 columns: the competition metric beside the params that differ.
HEADLINE_DROP := Created|pr_auc|best_f1.*|matchers\..*|known_matches|queries|.*recall_at_.*|model|submit|(data|metrics|models|src)/.*
headline: setup
	$(BIN)/dvc exp show --no-pager --only-changed --precision 4 --drop '$(HEADLINE_DROP)' --keep 'Experiment|competition_metric'

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

test-fast: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m 'not slow'

# ruff (pinned in the test extra): line length 120, import sorting, pyupgrade; mypy type-checks src/.
# CI runs `make lint`.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf data/demo data/prepared data/embeddings data/features data/scores data/ensemble data/submission.csv models/*/
params:
	$(BIN)/python -m matching.compose_params

# The tables in README.md and docs/, regenerated from the files that hold their figures.
tables: setup
	$(BIN)/python benchmarks/tables.py
