# pixtract: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.test-deps-stamp
DEMO_OUT ?= out/demo

export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1

.PHONY: setup system-deps ocr-langs browser demo test mutate bench load fixtures clean

setup: $(STAMP) system-deps

# Packages go in with uv (put into the venv by pip): seconds, where pip takes about two minutes
# of a CI run for the same set on 2 cores. pip does the install itself if uv cannot.
INSTALL = $(BIN)/python -m pip install --quiet --disable-pip-version-check uv >/dev/null 2>&1 \
	&& $(BIN)/uv pip install --quiet --python $(BIN)/python $(1) \
	|| $(BIN)/python -m pip install --quiet --disable-pip-version-check $(1)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(call INSTALL,-e .)
	touch $(STAMP)

# pixtract with its test-only packages (pytest, Hypothesis, the vendors' SDKs for contract
# tests) in one run: installing `.` first and `.[test]` after resolves everything twice.
$(TEST_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(call INSTALL,-e ".[test]")
	touch $(STAMP) $(TEST_STAMP)

# Tesseract (the local engine's second OCR engine, with its orientation data) and strace (the
# test that a local run sends nothing off the machine). Installed with apt-get when missing.
system-deps:
	@command -v tesseract >/dev/null 2>&1 && command -v strace >/dev/null 2>&1 || { \
	  echo "installing tesseract-ocr, strace (apt-get)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq tesseract-ocr tesseract-ocr-eng \
	    tesseract-ocr-osd strace >/dev/null; }
	@tesseract --version 2>&1 | head -n 1

# Extra Tesseract languages (RapidOCR, the other engine, already reads Chinese, Japanese and
# Latin scripts): make ocr-langs OCR_LANGS="kor rus chi_sim" (Tesseract codes; Debian packages).
OCR_LANGS ?= chi_sim jpn
ocr-langs:
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  pkgs=$$(for l in $(OCR_LANGS); do echo tesseract-ocr-$$l | tr '_' '-' | tr 'A-Z' 'a-z'; done); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$pkgs >/dev/null
	@tesseract --list-langs 2>/dev/null | tail -n +2 | tr '\n' ' '; echo

# Headless Chromium for the report's browser test (Debian package; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || { \
	  echo "installing chromium (apt-get), for the report test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }

# The main job on the bundled samples, offline. Some samples are broken on purpose, so
# exit code 1 (some pages failed, records say why) is expected; 2 or worse is an error.
demo: setup
	rm -rf $(DEMO_OUT)
	$(BIN)/pixtract run fixtures/samples fixtures/real --out $(DEMO_OUT); rc=$$?; \
	  [ $$rc -le 1 ] || exit $$rc
	@echo "demo outputs: $(abspath $(DEMO_OUT)) (results.jsonl, manifest.json, report.html, one .md per document)"

# Two pytest workers (pytest-xdist), each taking whole test files (--dist loadfile: a file's
# module-scoped servers and runs start once). Most slow tests wait on servers and subprocesses,
# so two workers help even on two cores. TEST_JOBS=0 runs in one process.
TEST_JOBS ?= 2
test: $(TEST_STAMP) system-deps browser
	$(BIN)/python -m pytest -q --durations=30 -n $(TEST_JOBS) --dist loadfile

# Mutation testing of the modules behind README's guarantees (not part of make test; ~5-10 min
# on 2 cores): scores per guarantee printed and written to docs/testing.md.
mutate: $(TEST_STAMP) system-deps
	$(BIN)/python tests/mutate.py

# Benchmarks (not part of make test): figures printed and saved to bench/results/*.json.
bench: setup
	$(BIN)/python bench/run_all.py

# The 5,000-page load run with 5 % injected faults (a slow, marked test; minutes).
load: $(TEST_STAMP) system-deps
	PIXTRACT_SLOW=1 $(BIN)/python -m pytest -q tests/test_load.py

fixtures: $(STAMP)
	$(BIN)/python fixtures/make_fixtures.py

clean:
	rm -rf $(VENV) out .pytest_cache mutants
