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

demo-data: install
	$(VENV)/bin/synthgen demo-data $(DEMO)

demo: demo-data
	$(VENV)/bin/synthgen summarize --surreal $(DEMO)/surreal --kinetics $(DEMO)/kinetics

# pytest exit 5 means "no tests collected": not a failure of the suite.
test: install
	$(PY) -m pytest $(PYTEST_ARGS) || [ $$? -eq 5 ]

bench: install
	$(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
