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

# 48 SURREAL-format people: with the demo's 15 motion kinds, 24 people left `make train` no
# better than the mean training pose (92.0 vs 87.4 mm PA-MPJPE); 48 give 74-76 vs 92.0 mm.
DEMO_PEOPLE ?= 48
demo-data: $(DEMO)/.done

$(DEMO)/.done: $(VENV)/.installed
	$(VENV)/bin/synthgen demo-data $(DEMO) --people $(DEMO_PEOPLE)
	touch $@

# The main job on the demo data: camera motion, examples, crop flow, a sharded Zarr store.
DEMO_EXAMPLES ?= 96
DEMO_STORE ?= stores/demo.zarr
demo: demo-data
	$(VENV)/bin/synthgen build --kinetics $(DEMO)/kinetics --surreal $(DEMO)/surreal \
		--smpl $(DEMO)/smpl --out $(DEMO_STORE) --pipeline demo --num-examples $(DEMO_EXAMPLES) \
		--cache $(DEMO)/camera_motion --overwrite

# pytest exit 5 means "no tests collected": not a failure of the suite.
# The detector environment is tried first and never fails the run (`-`): without it the detector
# tests skip with a message.
test: install
	-$(MAKE) detector
	$(PY) -m pytest $(PYTEST_ARGS) || [ $$? -eq 5 ]

# `make bench`: every benchmark but sim2real (an hour of training: `make sim2real`), then every
# goal figure beside its goal; `make bench BENCH_ARGS="read build"` runs some.
bench: install
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-detector $(DEMO) stores .pytest_cache

# ---- trainer (Motion HMR) -------------------------------------------------------------------
# `make train`: a small Motion HMR on the demo store (`make demo` builds it when missing), CPU.
# `make train STORE=stores/full.zarr PIPELINE=train_full` trains the paper's model (a name of
# synthgen/pipelines/ or a path to your own TOML file). A run folder that holds a run is refused:
# `make train TRAIN_ARGS=--overwrite` starts it again, `TRAIN_ARGS=--resume` continues it.
STORE ?= $(DEMO_STORE)
PIPELINE ?= train_demo
.PHONY: train

$(DEMO_STORE):
	$(MAKE) demo

train: install $(if $(filter $(DEMO_STORE),$(STORE)),$(DEMO_STORE))
	$(VENV)/bin/trainer train --store $(STORE) --pipeline $(PIPELINE) $(TRAIN_ARGS)

# ---- 2D keypoint detector (isolated environment) ---------------------------------------------
# `make detector`: MediaPipe Pose for `synthgen build-video --detector mediapipe`. mediapipe 0.10.21
# pins numpy<2 and a non-headless OpenCV 4.11, so it gets its own venv and NEVER enters $(VENV);
# synthgen/sources/detector/mediapipe_runner.py runs in it as a subprocess. Its pose model ships inside
# the wheel (no download at run time). Another Python with mediapipe: SYNTHGEN_DETECTOR_PYTHON.
DETECTOR_VENV := .venv-detector
.PHONY: detector

detector: $(DETECTOR_VENV)/.installed

$(DETECTOR_VENV)/.installed:
	test -x $(DETECTOR_VENV)/bin/python || $(PYTHON) -m venv $(DETECTOR_VENV)
	$(DETECTOR_VENV)/bin/python -m pip install -q mediapipe==0.10.21
	touch $@

# ---- evidence of transfer ---------------------------------------------------------------------
# `make sim2real`: the paper's Table 1 and Table 2 in miniature, trained on demo domain A and
# tested on domain B's held-out motions (benchmarks/bench_sim2real.py; about 40 min on 2 CPU cores,
# results in docs/sim2real.md).
# `make sim2real SIM2REAL_ARGS=--quick` is a few-minute smoke test; `--budget gpu --device cuda`
# the full size. Results: runs/sim2real/<setting>/results.md and sim2real.png.
SIM2REAL_ARGS ?=
.PHONY: sim2real

sim2real: install
	$(PY) -m benchmarks sim2real -- $(SIM2REAL_ARGS)
