# FAHR-Face, reproduced. `make book` rebuilds the paper; `make test` proves it works.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PROFILE ?= demo
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SET ?=
NB ?=
# pytest-xdist workers for make test and test-fast: auto = one per core, 0 = serial
JOBS ?= auto
SETS := $(foreach s,$(SET),--set $(s))
# pip's find-links warnings on this kind of machine are noise; keep everything else
QUIET_PIP := { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: help setup setup-browser book book-real chapter spread publish test test-fast lint format bench lock readme-figure clean clean-all

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: $(VENV)/.installed  ## create .venv and install the locked environment (quick when nothing changed)

$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]' 2>&1 | $(QUIET_PIP)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

setup-browser:  ## install Debian's headless Chromium for the rendering tests (needs root or sudo)
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] && echo "" || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

book: setup  ## execute the chapters that changed and render the book (PROFILE=demo|smoke|paper, SET="k=v ...")
	$(BIN)/fahr book --profile $(PROFILE) $(SETS)

# The real-data book without real data: FAHR-Synth written in the real datasets' own formats (unaligned photos, no
# planted truth), then the book built from that tree with data.source=real, in its own artifacts folder so that it
# never replaces the FAHR-Synth book of the same profile; then the cross-path check (the real path's labels, FaceAge
# error and hazard ratios against FAHR-Synth's own on the same photos, with the same models).
REAL_ARTIFACTS := $(abspath artifacts/real-data)
book-real: setup  ## the real-data book from FAHR-Synth exported as real datasets (PROFILE=demo|smoke): artifacts/real-data
	$(BIN)/fahr synth --profile $(PROFILE) --export $(REAL_ARTIFACTS)/$(PROFILE)-tree --force
	FAHR_ARTIFACTS=$(REAL_ARTIFACTS) $(BIN)/fahr book --profile $(PROFILE) --set data.source=real \
	  --set data.root=$(REAL_ARTIFACTS)/$(PROFILE)-tree --set 'data.prealigned=[]' $(SETS)
	FAHR_ARTIFACTS=$(REAL_ARTIFACTS) $(BIN)/fahr crosspath --profile $(PROFILE) --set data.source=real \
	  --set data.root=$(REAL_ARTIFACTS)/$(PROFILE)-tree --set 'data.prealigned=[]' $(SETS)

chapter: setup  ## re-execute one chapter and re-render: make chapter NB=reproducibility [PROFILE=..] [SET="k=v"]
	@test -n "$(NB)" || { echo "usage: make chapter NB=<chapter name> [PROFILE=$(PROFILE)] [SET=\"key=value ...\"]"; exit 2; }
	$(BIN)/fahr chapter $(NB) --profile $(PROFILE) $(SETS)

SEEDS ?= 3
spread: setup  ## rebuild the chapters with SEEDS seeds in all (default 3), and on emulated CPUS=avx2,generic if given; show the spread (PROFILE=..)
	$(BIN)/fahr spread --profile $(PROFILE) --seeds $(SEEDS) $(if $(CPUS),--cpus $(CPUS),) $(SETS)

publish: setup  ## push the built book to gh-pages (PROFILE=demo|paper, REMOTE=origin; ALLOW_CLINICAL=1 for real patients)
	$(BIN)/fahr publish --profile $(PROFILE) --remote $(or $(REMOTE),origin) $(if $(ALLOW_CLINICAL),--allow-clinical,)

# each test file stays whole on one worker (--dist loadfile in pyproject.toml): a module's fixtures are built once
test: setup setup-browser  ## install, then run the whole test suite on every core (JOBS=auto|N|0; it builds the smoke book)
	$(BIN)/python -m pytest -n $(JOBS)

test-fast: setup  ## the quick tier for the edit-test loop: the tests not marked slow, on every core (JOBS=auto|N|0)
	$(BIN)/python -m pytest -n $(JOBS) -m "not slow"

lint: setup  ## ruff: lint and formatting
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup  ## ruff: fix what can be fixed and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup  ## run the benchmarks; the table goes to artifacts/$(PROFILE)/bench/
	$(BIN)/fahr bench --profile $(PROFILE) $(SETS)

lock:  ## re-resolve the dependencies in a fresh venv and rewrite requirements.lock and environment.yml
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]' 2>&1 | $(QUIET_PIP)
	.lock-venv/bin/python -m fahr.core.envfiles freeze
	rm -rf .lock-venv

readme-figure:  ## copy the demo book's summary figure into docs/ for the README (after make book)
	mkdir -p docs && cp artifacts/demo/report/summary.png docs/results-demo.png

clean:  ## remove everything generated (artifacts/), keep the environment
	rm -rf artifacts

clean-all: clean  ## also remove the environment
	rm -rf $(VENV)
