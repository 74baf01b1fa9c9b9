# Everyday commands; the README's two set-up commands need nothing but Python and pip.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test lint format dev serve bench

$(VENV)/bin/avatar-pipeline:
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -e ".[dev]"

install: $(VENV)/bin/avatar-pipeline

demo: install          ## materialise the demo kits on the embedded defaults
	$(VENV)/bin/avatar-pipeline demo

test: install          ## the whole suite (PostgreSQL on 127.0.0.1:5432 required)
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

dev: install           ## the Dagster UI on the demo's instance
	DAGSTER_HOME=$(CURDIR)/var/dagster $(VENV)/bin/dagster dev

serve: install         ## the scene API and the studio on 127.0.0.1:8000
	$(VENV)/bin/avatar-pipeline serve

bench: install         ## every benchmark; figures go in bench/README.md
	$(PY) bench/bench_gate.py
	$(PY) bench/copy_sweep.py
	$(PY) bench/bench_kit.py
	$(PY) bench/bench_image_service.py
	$(PY) bench/bench_scoring.py
	$(PY) bench/bench_scenes.py
	$(PY) bench/bench_api_load.py --db sqlite
	$(PY) bench/bench_api_load.py --db postgresql
	$(PY) bench/bench_fleet.py --kits 32
