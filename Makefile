# Two commands on a fresh machine: `make demo` (main job on the embedded demo data) and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DEMO := demo_data

.PHONY: install demo demo-data test bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned to the local CPU wheel, so nothing later pulls a CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo-data: $(DEMO)/.done

$(DEMO)/.done: $(VENV)/.installed
	$(VENV)/bin/synthgen demo-data $(DEMO)
	touch $@

# The main job on the demo data: camera motion, examples, crop flow, a sharded Zarr store.
DEMO_EXAMPLES ?= 64
DEMO_STORE ?= stores/demo.zarr
demo: demo-data
	$(VENV)/bin/synthgen build --kinetics $(DEMO)/kinetics --surreal $(DEMO)/surreal \
		--out $(DEMO_STORE) --pipeline demo --num-examples $(DEMO_EXAMPLES) \
		--cache $(DEMO)/camera_motion --overwrite

# pytest exit 5 means "no tests collected": not a failure of the suite.
test: install
	$(PY) -m pytest $(PYTEST_ARGS) || [ $$? -eq 5 ]

bench: install
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache

# ---- trainer (Motion HMR) -------------------------------------------------------------------
# `make train`: a small Motion HMR on the demo store (`make demo` builds it when missing), CPU.
# `make train STORE=stores/full.zarr PIPELINE=pipelines/train_full.toml` trains the paper's model.
STORE ?= $(DEMO_STORE)
PIPELINE ?= pipelines/train_demo.toml
.PHONY: train

$(DEMO_STORE):
	$(MAKE) demo

train: install $(if $(filter $(DEMO_STORE),$(STORE)),$(DEMO_STORE))
	$(VENV)/bin/trainer train --store $(STORE) --pipeline $(PIPELINE)
