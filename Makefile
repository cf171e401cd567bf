# Two commands on a fresh machine:
#   make sample   set up .venv and run the pipeline on the sample Toyama drive (../shared)
#   make test     set up .venv and run the tests
#   make wheelhouse   wheels for installing patrol on a PC without internet (README: Installing on a PC without
#                     internet); for another PC: make wheelhouse PLATFORM=win_amd64 PYVER=3.12
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
SHARED  ?= ../shared
TOYAMA  := $(SHARED)/sample_drives/toyama
OUT     ?= out/toyama
WHEELHOUSE ?= wheelhouse
PLATFORM   ?=
PYVER      ?=
# pip download evaluates environment markers on THIS machine, not on --platform: the Windows-only dependencies of
# the light install (typer: colorama; zoneinfo: tzdata) are named for a win PLATFORM, else the wheelhouse lacks them
WIN_ONLY   := colorama tzdata

.PHONY: setup sample test bench clean wheelhouse

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

# patrol's own wheel (code, the shipped model and configs) and the wheels of the light install's dependencies (no
# torch extra: for another platform pip download cannot resolve torch's platform-marked CUDA wheels, measured) for
# PLATFORM/PYVER (default: this machine's), binary wheels only: the PC without internet needs no compiler. Then on
# that PC: pip install --no-index --find-links wheelhouse road-patrol
wheelhouse:
	rm -f $(WHEELHOUSE)/road_patrol-*.whl
	$(PY) -m pip wheel --no-deps --wheel-dir $(WHEELHOUSE) .
	$(PY) -m pip download --dest $(WHEELHOUSE) --only-binary=:all: \
	    $(if $(PLATFORM),--platform $(PLATFORM)) $(if $(PYVER),--python-version $(PYVER)) \
	    $(WHEELHOUSE)/road_patrol-*.whl $(if $(findstring win,$(PLATFORM)),$(WIN_ONLY))
	rm -rf build
	du -sh $(WHEELHOUSE)

clean:
	rm -rf out .pytest_cache
