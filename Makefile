# backup-guard — every target fails loudly. See README.md.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
SHARED ?= $(abspath ../shared)
export VELERO_CRDS_DIR ?= $(if $(wildcard $(SHARED)/fixtures/velero-crds),$(SHARED)/fixtures/velero-crds,)
export SNAPSHOT_CRDS_DIR ?= $(if $(wildcard $(SHARED)/fixtures/snapshot-crds),$(SHARED)/fixtures/snapshot-crds,)

.DEFAULT_GOAL := all
.PHONY: all build test lint unit chart e2e static demo bench bench-smoke deps

## deps: the real storage servers the tests start (s3s-fs, moto, Azurite, fake-gcs-server).
deps:
	hack/storage/install.sh

all: build

build:
	$(CARGO) build --release --locked

## test: everything CI runs — format, lints, unit and fixture tests, the real-API-server suite.
test: deps lint unit chart e2e static bench-smoke
	@echo "make test: all suites passed"

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets --all-features -- -D warnings

unit:
	$(CARGO) test --locked

## chart: render the chart (Go text/template + sprig), schema, drift, promtool alert tests, server dry-run.
chart:
	hack/render/test.sh

## e2e: the suite against a real kube-apiserver ($$KUBECONFIG, else a local control plane).
e2e:
	hack/e2e/run.sh

## static: the container image's binary (static musl) built as the Dockerfile builds it, then the
## process tests and the e2e suite run with it.
static:
	hack/static/check.sh

## demo: the seed scenario end to end on a local control plane and local storage.
demo:
	hack/e2e/demo.sh

## bench-smoke: the bench harness in seconds, to keep it working (its figures are not a record).
bench-smoke:
	BENCH_SMOKE=1 hack/bench/run.sh

## bench: each figure as `BENCH <name> <value> <unit>`.
bench:
	hack/bench/run.sh
