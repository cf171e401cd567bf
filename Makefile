# Two commands on a fresh machine:
#   make sample   set up .venv and run the pipeline on the sample Toyama drive (../shared)
#   make test     set up .venv and run the tests
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
SHARED  ?= ../shared
TOYAMA  := $(SHARED)/sample_drives/toyama
OUT     ?= out/toyama

.PHONY: setup sample test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[torch,test]'
	touch $@

sample: setup
	$(BIN)/patrol run $(TOYAMA)/toyama-2026-11-p1 $(TOYAMA)/toyama-2026-11-p2 \
	    --roads $(TOYAMA)/roads.geojson --out $(OUT) --store $(OUT)/registry.gpkg

test: setup
	bash scripts/ensure-chromium
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/bench_pipeline.py

clean:
	rm -rf out .pytest_cache
