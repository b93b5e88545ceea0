# eventshop — run the whole system or its tests with only Go (and make).
SHELL := /bin/bash
SERVICES := order-service inventory-service payment-service notification-service audit-service
MODULES  := shared $(SERVICES) tools
# deployments/k8s only decodes manifests (kept out of go.work so its Kubernetes dependencies never
# leak into the services' builds): vetted and tested alone, not worth the race detector's rebuild.
CHECKED  := $(MODULES) deployments/k8s
GO       ?= go

.PHONY: run test test-unit test-e2e test-changed vet race build clean

## run: embedded NATS + every service + the gateway simulator (Ctrl-C stops; data kept in .data/)
run:
	@mkdir -p .data/bin && $(GO) build -o .data/bin/devstack ./tools/cmd/devstack
	exec .data/bin/devstack

## test: vet, then every module's tests on its own (GOWORK=off), then the end-to-end tests
test: vet test-unit test-e2e

vet:
	@set -e; for m in $(CHECKED) e2e; do echo "== vet $$m"; (cd $$m && GOWORK=off $(GO) vet ./...); done

test-unit:
	@set -e; for m in $(CHECKED); do echo "== test $$m"; (cd $$m && GOWORK=off $(GO) test -count=1 ./...); done

test-e2e:
	cd e2e && GOWORK=off $(GO) test -count=1 -timeout 15m ./...

## test-changed: vet and test only the modules a change touches (BASE=<rev>, default origin/main)
test-changed:
	@set -e; for m in $$(scripts/changed-modules $(BASE)); do \
	  echo "== $$m"; (cd $$m && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) test -count=1 ./...); done

## race: the race detector over the concurrent packages
race:
	@set -e; for m in $(MODULES); do echo "== race $$m"; (cd $$m && GOWORK=off $(GO) test -count=1 -race ./...); done

build:
	$(GO) build ./shared/... $(addsuffix /...,$(addprefix ./,$(SERVICES))) ./tools/...

clean:
	rm -rf .data

.PHONY: compose-smoke compose-cluster

## compose-smoke: images + docker-compose.yml on the local Docker engine: README walkthrough, services killed mid-saga
compose-smoke:
	bash deployments/ci/compose-smoke.sh

## compose-cluster: the 3-node NATS cluster variant: a burst of orders while nats-2 is stopped, then it rejoins
compose-cluster:
	bash deployments/ci/compose-cluster.sh
