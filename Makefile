# servingstack: `make synth` and `make test` work offline on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STACKS := $(patsubst stacks/Pulumi.%.yaml,%,$(wildcard stacks/Pulumi.*.yaml))
STACK  ?= dev

.PHONY: help install install-dev synth test preview up clean

help:
	@echo "make synth            synthesize every stack in stacks/ offline into build/<stack>/"
	@echo "make test             run the test suite"
	@echo "make preview STACK=s  pulumi preview (needs the Pulumi CLI and AWS credentials)"
	@echo "make up STACK=s       pulumi up"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

synth: $(VENV)/.installed
	@set -e; for s in $(STACKS); do \
	  echo "== $$s"; $(BIN)/servingstack synth --stack $$s --out build/$$s; \
	done

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

preview: $(VENV)/.installed
	pulumi preview --stack $(STACK) --diff

up: $(VENV)/.installed
	pulumi up --stack $(STACK)

clean:
	rm -rf build .pytest_cache
