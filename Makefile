# The two commands that matter: `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
CXBOT  := $(VENV)/bin/cxbot
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install demo test test-slow eval-full import-time schemas lint typecheck check clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## Ingest the Northwind sample knowledge and run the scripted demo conversation.
demo: install
	$(CXBOT) ingest
	$(CXBOT) chat --script evals/northwind/demo.yaml --fresh

## The default test suite (real MiniLM, Chroma, SQLite, stub LLM server; offline).
test: install
	$(PY) -m pytest -q -m "not slow"

## Slow checks (full datasets, benchmarks).
test-slow: install
	$(PY) -m pytest -q -m slow

## How long `import cxbot` takes (a fresh interpreter each time, compared with `pass`).
import-time: install
	@$(PY) -m timeit -n 1 -r 20 -s "import subprocess, sys" "subprocess.run([sys.executable, '-c', 'pass'])" | sed 's/^/python -c pass:         /'
	@$(PY) -m timeit -n 1 -r 20 -s "import subprocess, sys" "subprocess.run([sys.executable, '-c', 'import cxbot'])" | sed 's/^/python -c import cxbot: /'

## Regenerate the published JSON schemas (eval suites, flows).
schemas: install
	$(PY) -c "import json; from cxbot.evals.suite import suite_json_schema as s; open('evals/suite.schema.json', 'w').write(json.dumps(s(), indent=2) + '\n')"

lint: install
	$(VENV)/bin/ruff check cxbot tests
	$(VENV)/bin/ruff format --check cxbot tests

typecheck: install
	$(VENV)/bin/mypy

check: lint typecheck test

clean:
	rm -rf .cxbot .pytest_cache .mypy_cache .ruff_cache

## Full-dataset evals (Banking77 full and 10-shot, SGD Services dev); datasets from $CXBOT_DATASETS or ../shared/datasets.
DATASETS ?= $(if $(CXBOT_DATASETS),$(CXBOT_DATASETS),../shared/datasets)
eval-full: install
	@test -d $(DATASETS)/banking77 || { echo "Banking77 not found under $(DATASETS): set CXBOT_DATASETS"; exit 2; }
	mkdir -p reports
	$(CXBOT) eval nlu --train $(DATASETS)/banking77/train.csv --test $(DATASETS)/banking77/test.csv --json reports/banking77-full.json --html reports/banking77-full.html
	$(CXBOT) eval nlu --train $(DATASETS)/banking77/train.csv --test $(DATASETS)/banking77/test.csv --shots 10 --json reports/banking77-10shot.json
	$(CXBOT) eval nlu --train $(DATASETS)/banking77/train.csv --test $(DATASETS)/banking77/test.csv --unknown-intents 10 --json reports/banking77-oos.json
	$(CXBOT) eval flows --dialogues $(DATASETS)/sgd-services/dev.json --schema $(DATASETS)/sgd-services/schema_dev.json --json reports/sgd-dev.json --html reports/sgd-dev.html
