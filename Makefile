# Set-up and main entry points. `make demo` and `make test` work on a fresh machine: they create the
# virtual environment on first use (preferring an already-present CPU build of torch) and install the
# package with its extras.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
WHEELS  ?= /opt/wheels
PYTEST_ARGS ?=

.PHONY: demo test test-slow test-gpu bench-exact bench-serve bench-dask clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@# A CPU build of torch found locally is preferred; otherwise pip takes the range from pyproject.toml.
	@if ! $(BIN)/python -c "import torch" >/dev/null 2>&1; then \
	  if ls $(WHEELS)/torch-*+cpu-*.whl >/dev/null 2>&1; then \
	    echo "installing torch from the local CPU wheel in $(WHEELS)"; \
	    $(BIN)/pip install -q --no-index --find-links $(WHEELS) "torch>=2.1,<3" \
	      || $(BIN)/pip install -q --find-links $(WHEELS) "torch>=2.1,<3"; \
	  fi; \
	fi
	$(BIN)/pip install -q -e ".[test,plot,dask]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/wassembed demo --out demo-output

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

test-gpu: $(STAMP)
	$(BIN)/python -m pytest -q -m gpu $(PYTEST_ARGS)

bench-exact: $(STAMP)
	$(BIN)/wassembed bench exact

bench-serve: $(STAMP)
	$(BIN)/wassembed bench serve

bench-dask: $(STAMP)
	$(BIN)/wassembed bench dask

clean:
	rm -rf $(VENV) demo-output .pytest_cache .hypothesis *.egg-info
