# The two commands a new user types: `make demo` and `make test`.
# Both build their own virtual environment in $(VENV) and install what they need.
#
# On the reference machine torch comes from a local CPU build (torch==2.13.0); elsewhere
# override it, e.g. `make test TORCH_SPEC="torch>=2.2"` or `TORCH_SPEC=` to let pip choose.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= all
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(EXTRAS)

.PHONY: demo test docs lint bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@if [ -n "$(TORCH_SPEC)" ]; then $(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"; fi
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m loglik_map demo

test: $(STAMP)
	$(BIN)/python -m pytest

# ruff (style and likely bugs), mypy (types), numpydoc validation of the public docstrings
lint: $(STAMP)
	$(BIN)/python -m ruff check loglik_map tests benchmarks examples tools docs/conf.py conftest.py
	$(BIN)/python -m mypy
	$(BIN)/python tools/check_docstrings.py

docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_pairwise.py
	$(BIN)/python benchmarks/bench_scoring.py
	$(BIN)/python benchmarks/bench_logit_chunks.py

clean:
	rm -rf $(VENV) docs/_build docs/generated docs/auto_examples
