# Two entry points; both install into .venv first (idempotent: only what is missing).
PY := .venv/bin/python

.PHONY: quickstart test bench install install-dev

quickstart: install
	$(PY) -m trainables.train

test: install-dev
	$(PY) -m pytest

bench: install
	$(PY) -m trainables.bench

install:
	@bash scripts/install.sh

install-dev:
	@bash scripts/install.sh --dev
