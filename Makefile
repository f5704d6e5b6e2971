# Every target works on a fresh clone and does the steps before it that it needs.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# New modules must be linked into the editable install (strict mode, so that mypy sees
# `medpubsub`, which lives in system/): reinstall when the set of sources changes.
SOURCES := $(shell find system pytest_medpubsub -name '*.py' 2>/dev/null | sort)
REPORT ?= build/report
DEMO_ARGS ?= --patients 2 --duration 45

.PHONY: help install kafka-jars demo test lint manifests clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml $(SOURCES)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "medpubsub needs Python >= 3.11; set PYTHON=python3.11 (or newer)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet --editable '.[dev]' --config-settings editable_mode=strict
	@touch $@

install: $(INSTALLED) kafka-jars ## .venv with the project, its dev tools and the Kafka jars

kafka-jars: $(INSTALLED) ## resolve Apache Kafka's jars with Maven into the user cache
	$(BIN)/medpubsub kafka --resolve-only

demo: install ## run the system locally for a while, then write a report (build/demo-report)
	$(BIN)/medpubsub demo $(DEMO_ARGS) --report build/demo-report

test: install ## every test that can run on this machine (unit, real Kafka, scenarios, offline k8s)
	$(BIN)/pytest --medpubsub-report=$(REPORT)
	@$(BIN)/python -m pytest_medpubsub.leftovers

lint: $(INSTALLED) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p medpubsub -p pytest_medpubsub
	$(BIN)/mypy tests scenarios load

manifests: $(INSTALLED) ## render every overlay (k8s + keda) to build/manifests/<overlay>.yaml
	$(BIN)/python -m pytest_medpubsub.k8s.render --out build/manifests

clean: ## remove the venv and build output (the Kafka jar cache stays in the user cache)
	rm -rf $(VENV) build .medpubsub .pytest_cache .mypy_cache .ruff_cache
