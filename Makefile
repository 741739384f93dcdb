# Set-up and main entry points. `make demo` and `make test` work on a fresh machine: they create the
# virtual environment on first use (preferring a CPU build of torch already on this machine) and install
# the package with the extras they need: the core (`pip install .`) is the exact stage without torch;
# [learn] adds torch and safetensors, [plot] matplotlib, [dask] dask.distributed, [test] and [lint] the tools.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
WHEELS  ?= /opt/wheels
PIP     := $(BIN)/pip install -q --no-compile
PYTEST_ARGS ?=
# Two guards make a hang fail the run: pytest-timeout ends a test that runs past its limit (pyproject.toml:
# exit 1 and every thread's stack), and `timeout` bounds the whole pytest process (a hang outside any test, e.g.
# at interpreter exit): SIGABRT after the limit (faulthandler prints every thread's stack), SIGKILL 30 s later,
# exit code 124. Limits in seconds; a machine without coreutils' `timeout` runs the first guard only.
SUITE_LIMIT ?= 1800
SLOW_LIMIT  ?= 14400
GUARD   := $(shell command -v timeout >/dev/null 2>&1 && echo "timeout --signal=ABRT --kill-after=30")
guarded  = $(if $(GUARD),$(GUARD) $(1) )$(BIN)/python -X faulthandler -m pytest
# images for `make bench-*`: the standard MNIST IDX files (override: make bench-exact BENCH_DATA=path)
BENCH_DATA ?= ../shared/data/mnist/mnist-8k-images-idx3-ubyte.gz

.PHONY: demo test suite lint test-slow test-gpu bench-exact bench-serve bench-dask clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch: a local CPU wheel for this Python if there is one (fast, no multi-GB CUDA download), installed before
# pip resolves the [learn] extra, else the range in pyproject.toml (users with GPUs install their CUDA build
# of torch first).
$(VENV)/.torch: | $(BIN)/python
	@if ! $(BIN)/python -c "import torch" >/dev/null 2>&1; then \
	  tag=$$($(BIN)/python -c "import sys; print('cp%d%d' % sys.version_info[:2])"); \
	  whl=$$(ls $(WHEELS)/torch-*+cpu-$$tag-*.whl 2>/dev/null | sort -V | tail -n 1); \
	  if [ -n "$$whl" ]; then echo "installing torch from $$whl"; $(PIP) "$$whl"; fi; \
	fi
	@touch $@

$(VENV)/.demo: pyproject.toml $(VENV)/.torch
	$(PIP) -e ".[learn,plot]"
	@touch $@

# everything the suite needs (it trains models, draws figures, starts Dask clusters) and the lint tools
$(VENV)/.test: pyproject.toml $(VENV)/.torch
	$(PIP) -e ".[learn,test,plot,dask,lint]"
	@touch $@ $(VENV)/.lint

# the lint tools alone (no torch needed: ruff reads files, import-linter reads imports)
$(VENV)/.lint: pyproject.toml | $(BIN)/python
	$(PIP) -e ".[lint]"
	@touch $@

demo: $(VENV)/.demo
	$(BIN)/wassembed demo --out demo-output

# the house rules (`make lint`), then the test suite: what .ci/run runs (pytest's summary is the last line)
test: $(VENV)/.test
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory suite

# the test suite alone, under the two guards (after `make test` has set up the environment)
suite:
	$(call guarded,$(SUITE_LIMIT)) -q $(PYTEST_ARGS)

# ruff (style, bugs, imports) and import-linter (the layers and forbidden imports in pyproject.toml)
lint: $(VENV)/.lint
	$(BIN)/ruff check .
	$(BIN)/lint-imports

test-slow: $(VENV)/.test
	$(call guarded,$(SLOW_LIMIT)) -q -m slow $(PYTEST_ARGS)

# on a CUDA machine: the gpu-marked tests, then `wassembed bench gpu` (one table, under 6 minutes on one GPU)
test-gpu: $(VENV)/.test
	$(call guarded,$(SUITE_LIMIT)) -q -m gpu $(PYTEST_ARGS)
	$(BIN)/wassembed bench gpu --device cuda --data $(BENCH_DATA)

bench-exact: $(VENV)/.demo
	$(BIN)/wassembed bench exact --data $(BENCH_DATA)

bench-serve: $(VENV)/.demo
	$(BIN)/wassembed bench serve --data $(BENCH_DATA)

bench-dask: $(VENV)/.test
	$(BIN)/wassembed bench dask --data $(BENCH_DATA)

clean:
	rm -rf $(VENV) demo-output .pytest_cache .hypothesis *.egg-info
