# The two commands a new lab member needs: `make demo` and `make test`.
# Both create .venv and install rtbci into it on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A CPU build of torch by default, so that a machine without a GPU never pulls
# a multi-GB CUDA build. With a GPU, install your CUDA torch into .venv first
# (it is kept), or override: make TORCH_SPEC="torch==2.13.0+cu126" ...
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean gpu-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "$(TORCH_SPEC)"
	$(BIN)/pip install -e ".[dev]"
	$(BIN)/rtbci check
	touch $@

install: $(STAMP)

# With a display the demo opens the dashboard; without one it runs headless.
demo: $(STAMP)
	$(BIN)/rtbci demo

# -v: one line per test as it finishes, with the share done; then the 15 slowest tests.
test: $(STAMP)
	$(BIN)/ruff check .
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -v --durations=15

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# On a machine with an NVIDIA GPU: TensorRT and CUDA backend tests and step timings, one JSON (8 min at most).
gpu-check:
	.ci/gpu-check gpu-check.json

clean:
	rm -rf $(VENV) build *.egg-info
