# Every install step lives here or in pyproject.toml: `make demo` and `make test` work on a new machine.
PYTHON ?= python3
# Real media that ships beside the checkout (see ../shared/assets/README.md).
SHARED ?= ../shared
DEMO_VIDEO ?= $(SHARED)/assets/video/trailer_bbb.mp4
DEMO_SHEET ?= results/demo_sheet.png
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint bench-decode clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU wheel of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@test -f $(DEMO_VIDEO) || { echo "demo video $(DEMO_VIDEO) not found: set DEMO_VIDEO=/path/to/video"; exit 1; }
	$(BIN)/longvid probe $(DEMO_VIDEO)
	$(BIN)/longvid frames $(DEMO_VIDEO) --sampler fps --rate 0.5 --max 32 --size 360 --out $(DEMO_SHEET)
	@echo "The contact sheet of the sampled frames is at $(abspath $(DEMO_SHEET))"
	# The whole pipeline on the tiny random LongVA until the trained default model lands.
	$(BIN)/longvid ask $(DEMO_VIDEO) "What happens in this video?" --model tiny-longva --frames 16 --max-new-tokens 16

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench-decode: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/decode.py

clean:
	rm -rf $(VENV) build .pytest_cache
