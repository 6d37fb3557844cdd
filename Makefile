# The README's two commands: `make run` and `make test`. Both start from a fresh
# clone: they create .venv, install adc with its test dependencies, build the
# Cython extensions, then run.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test build deps bench bench-quick clean

$(VENV)/bin/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel 'Cython>=3.0'

deps: $(STAMP)
# sslyze (tests/integration/test_tls_sslyze.py) pins an older cryptography: it gets its own venv
$(STAMP): $(VENV)/bin/python pyproject.toml setup.py scripts/install-deps
	scripts/install-deps
	$(BIN)/pip install -q --no-build-isolation -e '.[test]'
	[ -x .venv-sslyze/bin/sslyze ] || { $(PY) -m venv .venv-sslyze && .venv-sslyze/bin/pip install -q sslyze; }
	touch $(STAMP)

# the extensions are rebuilt in place whenever a .pyx/.pxd changed
build: deps
	$(BIN)/python setup.py -q build_ext --inplace

run: build
	$(BIN)/adcd --demo

test: build
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: build
	$(BIN)/python perf/bench.py --full

bench-quick: build
	$(BIN)/python perf/bench.py --quick

clean:
	rm -rf build $(VENV) .venv-sslyze *.egg-info
	find adc \( -name '*.so' -o -name '*.c' \) -delete
