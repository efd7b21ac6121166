# convlens — two commands do all the set-up on a fresh machine:
#   make run    creates .venv, installs, serves http://127.0.0.1:8000
#   make test   the same set-up plus the test extra (and a browser), then every test
PYTHON ?= python3
VENV   ?= .venv
EXTRAS ?= test
HOST   ?= 127.0.0.1
PORT   ?= 8000
PY      = $(VENV)/bin/python
PYTEST_ARGS ?=

# One stamp per set of extras, so `make run` then `make test` installs only what is missing.
STAMP_RUN  = $(VENV)/.installed-run
STAMP_TEST = $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
comma := ,

.PHONY: run test lint bench fuzz load train docker browser clean mutate

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP_RUN): pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -e ".[$(EXTRAS)]"
	touch $@

run: $(STAMP_RUN)
	$(PY) -m uvicorn app.main:app --host $(HOST) --port $(PORT) --http app.tcp:NoDelayH11

browser: $(STAMP_TEST)
	@PY=$(PY) sh scripts/ensure_browser.sh

test: $(STAMP_TEST) browser
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP_TEST)
	$(PY) -m ruff check core app tests bench
	$(PY) -m mypy core app
	$(VENV)/bin/hadolint Dockerfile

bench: $(STAMP_TEST)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) bench/bench_core.py
	$(PY) bench/bench_api.py

fuzz: $(STAMP_TEST)
	CONVLENS_FUZZ_EXAMPLES=$${CONVLENS_FUZZ_EXAMPLES:-1000} $(PY) -m pytest tests/test_fuzz_api.py -q -s

load: $(STAMP_TEST)
	$(PY) bench/load.py

train: $(STAMP_RUN)
	$(PY) -m core.train

# Mutation testing of core/ and app/'s request validation (mutmut 3, settings in setup.cfg): each mutant runs
# only the non-browser, non-slow tests that reach the mutated function. About 45 min on 2 busy cores for the
# whole set; `make mutate MUTANTS='core.shapes*'` runs one module. Writes var/mutation/report.md.
MUTANTS ?=
MUTATE_CHILDREN ?= 2
mutate: $(STAMP_TEST)
	$(PY) -m pip install --disable-pip-version-check -q "mutmut==3.8.1"
	$(VENV)/bin/mutmut run --max-children $(MUTATE_CHILDREN) $(MUTANTS) || true
	$(PY) scripts/mutation_report.py

docker:
	docker build -t convlens .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
