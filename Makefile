# segtool — every target installs what it needs first, so each works on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JOBS   ?= 2

.PHONY: install test demo bench lint clean

install: $(STAMP)

# Re-installs only when pyproject.toml changed (the stamp is newer otherwise).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dask]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -n $(JOBS) -q

demo: install
	$(BIN)/segtool demo --out demo-output

bench: install
	$(BIN)/python -m bench

lint: install
	$(BIN)/ruff check segtool tests bench
	$(BIN)/ruff format --check segtool tests bench

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis demo-lake demo-output
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
