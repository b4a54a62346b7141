# servingstack: `make synth` and `make test` work offline on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STACKS := $(patsubst stacks/Pulumi.%.yaml,%,$(wildcard stacks/Pulumi.*.yaml))
STACK  ?= dev
# checkov pins old boto3/packaging/networkx: it gets its own virtualenv, called as a subprocess.
CHECKOV_VENV    ?= .venv-checkov
CHECKOV_VERSION ?= 3.3.30

.PHONY: help install install-dev policy-install synth test check scan pr-summary preview up clean

help:
	@echo "make synth            synthesize every stack in stacks/ offline into build/<stack>/"
	@echo "make test             run the test suite"
	@echo "make check            synth + schema, semantic and policy-pack checks for every stack (offline)"
	@echo "make scan             checkov on every stack's synthesized manifests, with policy/checkov-waivers.yaml"
	@echo "make pr-summary       Markdown: each synthesized stack's resources and monthly cost (after check/synth)"
	@echo "make policy-install   the policy pack's own virtualenv (policy/.venv) for pulumi --policy-pack"
	@echo "make preview STACK=s  pulumi preview (needs the Pulumi CLI and AWS credentials)"
	@echo "make up STACK=s       pulumi up"
	@echo "make bench            construction benchmark: components vs raw resources, 1/10/50 models"
	@echo "make api-check        public API from a clean virtualenv with only the package installed"
	@echo "make schema           regenerate the component package schema snapshot tests/golden/schema.json"

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

# Every stack is checked even when one fails; the exit status says whether any did.
check: $(VENV)/.installed-dev
	@rc=0; for s in $(STACKS); do \
	  echo "== $$s"; $(BIN)/servingstack check --stack $$s --out build/$$s || rc=1; \
	done; exit $$rc

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	@touch $@

scan: synth $(CHECKOV_VENV)/.installed
	$(BIN)/python -m servingstack.tools.scan --checkov $(CHECKOV_VENV)/bin/checkov --waivers policy/checkov-waivers.yaml \
	  $(foreach s,$(STACKS),build/$(s)/manifests)

pr-summary: $(VENV)/.installed
	@$(BIN)/python -m servingstack.tools.prsummary $(foreach s,$(STACKS),build/$(s))

policy/.venv/.installed: policy/requirements.txt
	$(PYTHON) -m venv policy/.venv
	policy/.venv/bin/python -m pip install --quiet -r policy/requirements.txt
	@touch $@

policy-install: policy/.venv/.installed

preview: $(VENV)/.installed
	pulumi preview --stack $(STACK) --diff

up: $(VENV)/.installed
	pulumi up --stack $(STACK)

.PHONY: bench api-check schema

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/construct.py

api-check: $(BIN)/python
	$(BIN)/python tests/api_check.py

schema: $(VENV)/.installed
	$(BIN)/python -m servingstack.tools.package > tests/golden/schema.json.tmp && mv tests/golden/schema.json.tmp tests/golden/schema.json

clean:
	rm -rf build .pytest_cache
