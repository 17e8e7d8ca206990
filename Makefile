# The two commands a new user needs:   make run   (install + start the app)   make test   (install + run the tests)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test test-fast lint bench ingest clean-cache

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Stamps are named after the requirements' hash, so an edited requirements file reinstalls.
APP_STAMP := $(VENV)/.app-$(shell cat requirements.txt | sha256sum | cut -c1-12)
DEV_STAMP := $(VENV)/.dev-$(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)

$(APP_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

run: $(APP_STAMP)
	$(BIN)/streamlit run app.py --server.port $(PORT)

# Two pytest workers, a test file each at a time (pytest-xdist): training, the browser and the app's server
# leave a core idle for much of a test, and a file keeps its module fixtures in one worker.
TEST_WORKERS ?= 2

test: $(DEV_STAMP)
	./scripts/ensure-chromium.sh
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The inner loop: every test that trains nothing, embeds nothing and opens no browser (about two minutes).
test-fast: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow and not browser and not real_data" $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

ingest: $(APP_STAMP)
	$(BIN)/python -m core.ingest --report-json report.json

bench: $(DEV_STAMP)
	for script in $(filter-out bench/bench_scale.py bench/bench_ann.py,$(wildcard bench/bench_*.py)); do $(BIN)/python $$script || exit 1; done

clean-cache: $(APP_STAMP)
	$(BIN)/python -m core.ingest --clear-cache
