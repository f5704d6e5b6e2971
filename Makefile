# Every target works on a fresh clone and does the steps before it that it needs.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# New modules must be linked into the editable install (strict mode, so that mypy sees
# `medpubsub`, which lives in system/): reinstall when the *set* of packaged files changes, not
# when one is edited (an edit is live already). $(FILES) holds that set; it is rewritten only
# when it differs, so its time stamp moves only then.
FILES := $(VENV)/.files
PACKAGED := $(shell find system pytest_medpubsub chaosmedpubsub -type f \( -name '*.py' -o -name '*.xml' -o -name '*.yaml' -o -name 'py.typed' -o -name 'go.mod' -o -name 'go.sum' \) 2>/dev/null | LC_ALL=C sort)
REPORT ?= build/report
DEMO_ARGS ?= --patients 2 --duration 45

.PHONY: help install kafka-jars demo check test test-designs bench lint manifests images clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(FILES): FORCE
	@mkdir -p $(VENV)
	@printf '%s\n' $(PACKAGED) > $@.new
	@if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

.PHONY: FORCE
FORCE:

$(INSTALLED): pyproject.toml $(FILES)
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

# Every process a run starts carries this id (leftovers finds what is left of the run by it).
# Simply expanded, once per make (a sub-make inherits it from the environment).
ifndef MEDPUBSUB_RUN_ID
MEDPUBSUB_RUN_ID := make-$(shell date +%s%N)
endif
export MEDPUBSUB_RUN_ID
# CI reads where the time went; pytest-timeout (pyproject) stops and dumps a hung test.
PYTEST := $(BIN)/pytest --durations=15

# The fast loop while editing: `make check`, or `.venv/bin/pytest -m "not kafka and not slow" tests/test_x.py`.
# Lint and the tests run side by side (mypy and pytest use one core each).
check: $(INSTALLED) kustomize ## the fast tier: lint, and every test that needs no Kafka and no slow tool (about a minute on 2 idle cores)
	@$(MAKE) --no-print-directory -j2 --output-sync=target lint fast-tests

.PHONY: fast-tests
fast-tests: $(INSTALLED)
	$(BIN)/pytest -q -n auto -m "not kafka and not slow" -p no:cacheprovider

# Two passes. The tests that check no latency run side by side, each worker with its own broker:
# they mostly wait (sessions expiring, tabs of 2 s), and on 2 cores 4 workers keep the CPU at
# about 60 % (measured). The `latency` tests (the running system under its SLOs) then run one at a
# time, so that nothing else moves their figures; they write the report.
TEST_WORKERS ?= 4
test: install kustomize ## everything that runs here without root, default design (unit, real Kafka, scenarios, offline k8s)
	@# The leftover check runs whether or not a test failed (a failure is when leaks happen).
	status=0; \
	$(PYTEST) -n $(TEST_WORKERS) --dist loadfile -m "not latency" -p no:cacheprovider || status=$$?; \
	$(PYTEST) -m latency --medpubsub-report=$(REPORT) || status=$$?; \
	$(BIN)/python -m pytest_medpubsub.leftovers; exit $$status

# One pytest session per design and security, each with one broker and one platform for all of
# its tests. Each design skips the tests it leaves out, with their measured causes (`left_out` in
# pytest_medpubsub/designs/<design>.py: under the dispatcher, the step ramp, the broker
# restart and the maker crash; bounds not loosened); add --medpubsub-run-left-out to run them.
test-designs: install ## the scenarios on the secured broker and under the dispatcher design
	status=0; \
	$(PYTEST) --medpubsub-secure --medpubsub-report=$(REPORT)/secure scenarios/test_steady_state.py scenarios/test_maker_killed.py || status=$$?; \
	$(PYTEST) --medpubsub-design=dispatcher --medpubsub-report=$(REPORT)/dispatcher scenarios/ tests/test_chaos_dispatcher.py || status=$$?; \
	$(PYTEST) --medpubsub-design=dispatcher --medpubsub-secure --medpubsub-report=$(REPORT)/dispatcher-secure scenarios/test_steady_state.py || status=$$?; \
	$(BIN)/python -m pytest_medpubsub.leftovers; exit $$status

# Not part of `make test`: nine loads x three designs (two of them up to 20 patients) x 60 s,
# about 45 minutes on 2 cores.
BENCH_ARGS ?=
bench: install ## latency/capacity benchmark of every design at 1-60 patients (build/bench)
	$(BIN)/python -m pytest_medpubsub.bench --out build/bench $(BENCH_ARGS)

lint: $(INSTALLED) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p medpubsub -p pytest_medpubsub -p chaosmedpubsub
	$(BIN)/mypy tests scenarios load

manifests: $(INSTALLED) kustomize ## render every overlay (k8s + keda) to build/manifests/<overlay>.yaml
	$(BIN)/python -m pytest_medpubsub.k8s.render --out build/manifests
	$(BIN)/python -m pytest_medpubsub.k8s.designs --out build/manifests

# The three service images (patient, medicine, dispatcher) with Docker (started first when
# installed but not running). BASE_IMAGE chooses the base; by default the Dockerfiles' official
# one when it can be pulled, else a local Debian bookworm base (debootstrap, needs root) named
# medpubsub/base:bookworm-<recipe>.
BASE_IMAGE ?=
images: $(INSTALLED) ## the patient, medicine and dispatcher images (docker build; BASE_IMAGE=... picks the base)
	$(BIN)/python -m pytest_medpubsub.platforms.images --log-dir build/images $(if $(BASE_IMAGE),--base-image $(BASE_IMAGE))

# The renderer uses `kubectl kustomize`, else `kustomize` (on PATH or in .venv/bin); when neither
# exists, kustomize is built into .venv/bin with Go (the module proxy is Go's own business).
KUSTOMIZE_VERSION := v5.5.0
.PHONY: kustomize
kustomize: ## make sure kustomize is available (installs it into .venv/bin with Go when missing)
	@if command -v kubectl >/dev/null || command -v kustomize >/dev/null || test -x $(BIN)/kustomize; then \
	  :; \
	elif command -v go >/dev/null; then \
	  echo "installing kustomize $(KUSTOMIZE_VERSION) into $(BIN)"; \
	  GOBIN="$(abspath $(BIN))" go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION); \
	else \
	  echo "make manifests needs kubectl or kustomize, or Go to install kustomize $(KUSTOMIZE_VERSION)" >&2; \
	  exit 1; \
	fi

clean: ## remove the venv and build output (the Kafka jar cache stays in the user cache)
	rm -rf $(VENV) build .medpubsub .pytest_cache .mypy_cache .ruff_cache

# A single-node kubeadm cluster built on this machine, for where kind cannot run (no privileged
# Docker): see docs/kubernetes.md. Binaries and images are cached under ~/.cache/medpubsub/here.
HERE := $(BIN)/python -m pytest_medpubsub.here
.PHONY: here-root cluster-here cluster-here-down e2e-here
here-root:
	@test "$$(id -u)" = 0 || { echo "this target must run as root: it changes iptables, mounts and /etc/kubernetes" >&2; exit 2; }

cluster-here: here-root install ## build (cached) and start a single-node kubeadm cluster here; prints its kubeconfig
	$(HERE) up

cluster-here-down: here-root install ## stop that cluster, remove what it changed on the host, check nothing is left
	$(HERE) down
	$(HERE) check-clean

e2e-here: here-root install ## cluster-here, the scenarios and chaos on it (embedded Kafka, then Strimzi), then down (always)
	$(HERE) e2e --report build/e2e-report $(if $(STRIMZI_SRC),--strimzi-src $(STRIMZI_SRC))

# Strimzi 1.2.0 for the cluster here, where no registry serves its images: its own
# install/cluster-operator from a checkout (STRIMZI_SRC=DIR, a clone or git directory with the
# tag), pointed at the operator and Kafka images, which are taken from the local Docker engine
# into the cache (docs/kubernetes.md, "Strimzi on the cluster here"). Exit 2 with what to do when
# something is missing. Users whose cluster pulls images never need it.
STRIMZI_SRC ?=
.PHONY: strimzi-here
strimzi-here: here-root install ## cache Strimzi 1.2.0's install manifest and images for e2e-here (STRIMZI_SRC=DIR)
	$(HERE) strimzi $(if $(STRIMZI_SRC),--src $(STRIMZI_SRC))
