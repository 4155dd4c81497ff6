# qa_seq2seq developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

# torch is installed first and pinned: a bare `torch` requirement can pull a multi-GB CUDA build.
# This environment ships the CPU wheel locally. Elsewhere, or for a GPU, override, e.g.
#   make install TORCH_ARGS="--index-url https://download.pytorch.org/whl/cpu"
#   make install TORCH=torch==2.13.0 TORCH_ARGS="--index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.13.0+cpu
TORCH_ARGS ?=

EXPERIMENT ?= toy_lstm
CKPT ?=
SPLIT ?= test
DECODE ?=
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install train test test-unit test-all eval decode serve tensorboard bench bench-decode bench-serve bench-accuracy mutate lint docs clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'
	@echo "  variables: EXPERIMENT=$(EXPERIMENT) CKPT=<file|run dir> SPLIT=$(SPLIT) DECODE=$(DECODE) ARGS='key=value ...'"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)" $(TORCH_ARGS)
	$(PY) -m pip install --quiet -e ".[dev,export,serve]"
	touch $@

install: $(VENV)/.installed ## create .venv with the pinned CPU torch and the package (editable, with dev tools, the ONNX export and serve extras)

train: install ## train EXPERIMENT (default toy_lstm) on the embedded toy data; extra overrides in ARGS
	$(PY) -m qa_seq2seq.train +experiment=$(EXPERIMENT) $(ARGS)

# A test per core (pytest-xdist); a module with a module-scoped fixture stays on one worker.
PYTEST_PARALLEL ?= -n auto --dist loadgroup

test: install ## run the test suite (what CI runs), a test per core
	$(PY) -m pytest -q $(PYTEST_PARALLEL)

test-unit: install ## the tests that neither train nor run a command: about a minute, for a quick check while coding
	$(PY) -m pytest -q -m "not slow and not train and not cli" $(PYTEST_PARALLEL)

test-all: install ## run the test suite including slow tests
	$(PY) -m pytest -q -m "" $(PYTEST_PARALLEL)

eval: install ## evaluate CKPT (default: newest run's best checkpoint) on SPLIT with DECODE=greedy|beam|sample (default: the run's validation search)
	$(PY) -m qa_seq2seq.evaluate split=$(SPLIT) $(if $(DECODE),decode=$(DECODE)) $(if $(CKPT),ckpt_path=$(CKPT)) $(ARGS)

decode: install ## answer questions from stdin with CKPT (default: newest run)
	$(VENV)/bin/qa-seq2seq-decode $(if $(CKPT),--checkpoint $(CKPT)) $(ARGS)

serve: install ## answer questions over HTTP with CKPT (a run, or an export folder; default: newest run)
	$(VENV)/bin/qa-seq2seq-serve $(if $(CKPT),--checkpoint $(CKPT)) $(ARGS)

tensorboard: install ## open TensorBoard on outputs/
	$(VENV)/bin/tensorboard --logdir outputs/

bench: install ## training + decoding benchmark against a plain-PyTorch reference
	$(PY) scripts/bench.py $(ARGS)

bench-decode: install ## decoding benchmark: greedy vs beam, batch 1 vs 64, CLI cold start
	$(PY) scripts/bench_decode.py $(ARGS)

bench-serve: install ## serving under load: concurrent clients on loopback vs a sequential batch-1 loop
	$(PY) scripts/bench_serve.py $(ARGS)

bench-accuracy: install ## exact match of named configs x 3 seeds under one time budget, vs a hand-written model
	$(PY) scripts/bench_accuracy.py $(ARGS)

# OMP_NUM_THREADS=1: mutmut forks after torch has started its OpenMP pool, which is not fork-safe
# (mutants then hang and count as timeouts).
mutate: install ## mutation testing of the promise-carrying modules (slow, not in CI): writes MUTATION.md
	$(PY) -m pip install --quiet -e ".[mutate]"
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(VENV)/bin/mutmut run --max-children $(or $(JOBS),2) || true
	$(PY) scripts/mutation_report.py > MUTATION.md

lint: install ## ruff
	$(VENV)/bin/ruff check qa_seq2seq tests scripts

docs: install ## build the documentation site (mkdocs, strict) into site/
	$(PY) -m mkdocs build --strict

clean: ## remove outputs and generated toy data (keeps .venv)
	rm -rf outputs multirun data/toy data/arith data/passages
