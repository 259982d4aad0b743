# Every target installs into .venv (or $PARETUNE_VENV, as scripts/install.sh) first
# (idempotent: only what is missing).
PY := $(or $(PARETUNE_VENV),.venv)/bin/python
EXP := experiments/quickstart-$(shell date +%Y%m%d-%H%M%S)

.PHONY: quickstart train test bench bench-frontier bench-gpu install install-dev

# The product's day on one machine: search -> frontier (+ plots, W&B) -> a fair pick.
quickstart: install
	$(PY) -m search run spaces/quickstart.yaml --storage experiments --name $(notdir $(EXP))
	$(PY) -m analysis frontier $(EXP)
	$(PY) -m analysis pick $(EXP) --rule fair

# HarmonRank vs MBCE with the training loop alone (no Ray).
train: install
	$(PY) -m trainables.train

test: install-dev
	$(PY) -m pytest

# Samples/s of the training step, every registered model x loss (benchmarks/throughput.py).
bench: install
	$(PY) -m benchmarks.throughput

# Random, Optuna NSGA-II, pymoo NSGA-II, PE-LTR grid, population NSGA-II at equal budget.
bench-frontier: install
	$(PY) -m benchmarks.frontier

# 256 configs on one GPU: population trials vs one-model trials packed at 1/16 GPU each,
# both through `search run` (benchmarks/gpu_sweep.py; needs CUDA).
bench-gpu: install
	$(PY) -m benchmarks.gpu_sweep --device cuda

install:
	@bash scripts/install.sh

install-dev:
	@bash scripts/install.sh --dev
