# One-command entry points. Works on a fresh machine with only Python 3.11.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.neurolm-installed
DEMO   ?= demo

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: setup demo test bench ui clean

setup: $(STAMP)

# torch first (a CPU build), then everything else pinned by constraints.txt.
# editable_mode=compat: Dask workers put their scratch dir (which holds a
# `storage/` spill folder) on sys.path; a strict editable install lets that
# folder shadow our `storage` package.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m neurolm.demo --out $(DEMO)

test: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest tests --durations=20

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

ui: $(STAMP)
	bash flows/ui.sh

clean:
	rm -rf $(DEMO) .pytest_cache
