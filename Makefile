# servingstack: `make synth` and `make test` work offline on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STACK_DIR ?= stacks
BUILD_DIR ?= build
STACKS := $(patsubst $(STACK_DIR)/Pulumi.%.yaml,%,$(wildcard $(STACK_DIR)/Pulumi.*.yaml))
STACK  ?= dev
# checkov pins old boto3/packaging/networkx: it gets its own virtualenv, called as a subprocess.
CHECKOV_VENV    ?= .venv-checkov
CHECKOV_VERSION ?= 3.3.30

# Everything a synthesized build depends on: the stack file, the code, the policy pack, the package
# metadata. A build is re-synthesized only when one of these is newer than its plan.json.
SOURCES := $(shell find components policy -path policy/.venv -prune -o \( -name '*.py' -o -name '*.yaml' \) -print 2>/dev/null) pyproject.toml
BUILDS  := $(foreach s,$(STACKS),$(BUILD_DIR)/$(s)/plan.json)
# servingstack diff's base for `make pr-diff` (the PR's target branch in GitHub Actions).
DIFF_BASE ?= $(if $(GITHUB_BASE_REF),origin/$(GITHUB_BASE_REF),origin/main)

# The engines' own code for tests/test_engine_flags.py: each supported vLLM release's wheel in its own
# virtualenv, --no-deps, with only what importing its argument parser needs (exact pins in
# tests/engines/vllm-<version>.txt) and the CPU torch build; plus the wheel of the vLLM release the
# pinned Triton image bundles (its EngineArgs are read from source, nothing is installed).
ENGINES        ?= .engines
VLLM_RELEASES  ?= 0.8.4 0.33.0
TRITON_VLLM    ?= 0.5.3.post1
ENGINE_TORCH   ?= torch==2.13.0

.PHONY: help install install-dev policy-install synth test check scan pr-summary pr-diff preview up clean engines clean-engines

help:
	@echo "make synth            synthesize every stack in stacks/ offline into build/<stack>/ (only stale ones;"
	@echo "                      goes on after a failing stack and lists every failure)"
	@echo "make test             run the test suite (builds the engine parsers first: make engines)"
	@echo "make engines          the vLLM releases' own argument parsers for the flag tests (.engines/, cached)"
	@echo "make check            schema, semantic and policy-pack checks of every stack's build (after synth)"
	@echo "make scan             checkov on every stack's synthesized manifests, with policy/checkov-waivers.yaml"
	@echo "make pr-summary       Markdown: each synthesized stack's resources and monthly cost (after check/synth)"
	@echo "make pr-diff          Markdown: servingstack diff of every stack against DIFF_BASE (default origin/main),"
	@echo "                      also written to build/pr-diff/comment.md"
	@echo "make policy-install   the policy pack's own virtualenv (policy/.venv) for pulumi --policy-pack"
	@echo "make preview STACK=s  pulumi preview (needs the Pulumi CLI and AWS credentials)"
	@echo "make up STACK=s       pulumi up"
	@echo "make bench            construction benchmark: components vs raw resources, 1/10/50 models"
	@echo "make api-check        public API from a clean virtualenv with only the package installed"
	@echo "make schema           regenerate the component package schema snapshot tests/golden/schema.json"
	@echo "make aiperf-venv      the benchmark load generator (AIPerf, the Job's version) in .venv-aiperf for the tests"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The deployment's exact pins first (requirements.txt, what `pulumi install` installs), then the
# dev extras on top: tests run against the versions a real `pulumi up` gets.
$(VENV)/.installed: $(BIN)/python pyproject.toml requirements.txt
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml requirements.txt
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Every stale stack is synthesized, failing or not (make -k); the failures are listed at the end.
synth: $(VENV)/.installed
	@mkdir -p $(BUILD_DIR); rm -f $(BUILD_DIR)/.synth-failed
	@$(MAKE) --no-print-directory -s -k $(BUILDS) || true
	@if [ -s $(BUILD_DIR)/.synth-failed ]; then echo "synth FAILED for: $$(tr '\n' ' ' < $(BUILD_DIR)/.synth-failed)"; exit 1; fi
	@echo "synth: $(BUILD_DIR)/ is current for $(STACKS)"

$(BUILD_DIR)/%/plan.json: $(STACK_DIR)/Pulumi.%.yaml $(SOURCES) $(VENV)/.installed
	@echo "== $*"
	@$(BIN)/servingstack synth --config $< --out $(BUILD_DIR)/$* || { rm -f $@; echo $* >> $(BUILD_DIR)/.synth-failed; exit 1; }

# On every core (pytest-xdist); work-stealing keeps the long single tests (clean-virtualenv install,
# fuzz corpus) from leaving a worker idle. PYTEST_ARGS adds arguments, e.g. PYTEST_ARGS='-n 0 -x'.
test: $(VENV)/.installed-dev engines
	$(BIN)/python -m pytest -q -n auto --dist worksteal $(PYTEST_ARGS)

engines: $(foreach v,$(VLLM_RELEASES),$(ENGINES)/vllm-$(v)/.installed) $(ENGINES)/wheels/.vllm-$(TRITON_VLLM)

$(ENGINES)/vllm-%/.installed: tests/engines/vllm-%.txt
	rm -rf $(ENGINES)/vllm-$*
	$(PYTHON) -m venv $(ENGINES)/vllm-$*
	$(ENGINES)/vllm-$*/bin/python -m pip install --quiet --no-compile --no-deps '$(ENGINE_TORCH)' 'vllm==$*' -r $<
	@touch $@

$(ENGINES)/wheels/.vllm-%:
	$(PYTHON) -m pip download --quiet --no-deps -d $(ENGINES)/wheels 'vllm==$*'
	@touch $@

# Every stack's build (from `make synth`, not synthesized again) is checked even when one fails
# (a stack that did not synthesize fails its check); the exit status says whether any did.
check: $(VENV)/.installed-dev
	-@$(MAKE) --no-print-directory synth
	@rc=0; for s in $(STACKS); do \
	  echo "== $$s"; $(BIN)/servingstack check --config $(STACK_DIR)/Pulumi.$$s.yaml --out $(BUILD_DIR)/$$s --reuse || rc=1; \
	done; exit $$rc

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	@touch $@

scan: synth $(CHECKOV_VENV)/.installed
	$(BIN)/python -m servingstack.tools.scan --checkov $(CHECKOV_VENV)/bin/checkov --waivers policy/checkov-waivers.yaml \
	  $(foreach s,$(STACKS),$(BUILD_DIR)/$(s)/manifests)

pr-summary: $(VENV)/.installed
	@$(BIN)/python -m servingstack.tools.prsummary $(foreach s,$(STACKS),$(BUILD_DIR)/$(s))

# The diff of every stack against DIFF_BASE (synthesized with its own code), as the PR comment.
# Exit 3 (changes) and 4 (hazards) are results, not failures; 1 and 2 fail the target.
pr-diff: $(VENV)/.installed-dev synth
	@mkdir -p $(BUILD_DIR)/pr-diff
	@rc=0; $(BIN)/servingstack diff --base $(DIFF_BASE) --head $(BUILD_DIR) > $(BUILD_DIR)/pr-diff/comment.md || rc=$$?; \
	  cat $(BUILD_DIR)/pr-diff/comment.md; \
	  if [ -n "$(PR_NUMBER)" ]; then echo "$(PR_NUMBER)" > $(BUILD_DIR)/pr-diff/pr-number; fi; \
	  [ $$rc -eq 0 ] || [ $$rc -eq 3 ] || [ $$rc -eq 4 ]

policy/.venv/.installed: policy/requirements.txt
	$(PYTHON) -m venv policy/.venv
	policy/.venv/bin/python -m pip install --quiet -r policy/requirements.txt
	@touch $@

policy-install: policy/.venv/.installed

preview: $(VENV)/.installed
	pulumi preview --stack $(STACK) --diff

up: $(VENV)/.installed
	pulumi up --stack $(STACK)

.PHONY: bench api-check schema aiperf-venv

# The real load generator for tests/test_bench_e2e.py (its own virtualenv, like checkov's; the test
# session also installs it in the background when it is missing).
aiperf-venv: $(VENV)/.installed-dev
	$(BIN)/python tests/aiperf_env.py install

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/construct.py

api-check: $(BIN)/python
	$(BIN)/python tests/api_check.py

schema: $(VENV)/.installed
	$(BIN)/python -m servingstack.tools.package > tests/golden/schema.json.tmp && mv tests/golden/schema.json.tmp tests/golden/schema.json

clean:
	rm -rf build .pytest_cache


clean-engines:
	rm -rf $(ENGINES)