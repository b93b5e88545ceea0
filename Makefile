# eventshop — run the whole system or its tests with only Go (and make).
SHELL := /bin/bash
SERVICES := order-service inventory-service payment-service notification-service audit-service
MODULES  := shared $(SERVICES) tools
# deployments/k8s only decodes manifests (kept out of go.work so its Kubernetes dependencies never
# leak into the services' builds): vetted and tested alone, not worth the race detector's rebuild.
CHECKED  := $(MODULES) deployments/k8s
GO       ?= go

.PHONY: run test test-unit test-e2e test-changed vet race build clean metrics check-alerts check-schemas tracing check-tracing

## run: embedded NATS + every service + the gateway simulator (Ctrl-C stops; data kept in .data/);
## METRICS=1: with the metrics store, dashboards and alerts beside it (deployments/observability/run.sh);
## TRACING=1: every span exported to Jaeger v2 beside it (deployments/tracing/run.sh; query API on :16686)
run:
	@mkdir -p .data/bin && $(GO) build -o .data/bin/devstack ./tools/cmd/devstack
	exec $(if $(METRICS),deployments/observability/run.sh --) $(if $(TRACING),deployments/tracing/run.sh --) .data/bin/devstack

## test: vet, then every module's tests on its own (GOWORK=off), then the end-to-end tests
test: vet test-unit test-e2e

vet:
	@unformatted=$$("$$($(GO) env GOROOT)/bin/gofmt" -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "not gofmt-formatted (run gofmt -w):"; echo "$$unformatted"; exit 1; fi
	@set -e; for m in $(CHECKED) e2e; do echo "== vet $$m"; (cd $$m && GOWORK=off $(GO) vet ./...); done

test-unit:
	@set -e; for m in $(CHECKED); do echo "== test $$m"; (cd $$m && GOWORK=off $(GO) test -count=1 ./...); done

test-e2e:
	cd e2e && GOWORK=off $(GO) test -count=1 -timeout 15m ./...

## test-changed: vet and test only the modules a change touches (BASE=<rev>, default origin/main)
test-changed:
	@set -e; for m in $$(scripts/changed-modules $(BASE)); do \
	  echo "== $$m"; (cd $$m && GOWORK=off $(GO) vet ./... && GOWORK=off $(GO) test -count=1 ./...); done

## fuzz: each fuzz target of the decoders of outside input for FUZZTIME (default 10s); a failing input
## is written to the package's testdata/fuzz/ (commit it: plain `go test` then replays it for ever)
FUZZTIME ?= 10s
FUZZ_TARGETS := shared:./events:FuzzDecode \
	shared:./platform/deadletter:FuzzAdminQuery \
	shared:./platform/deadletter:FuzzLetterHeaders \
	order-service:./internal/httpapi:FuzzCreateOrderBody \
	inventory-service:./internal/httpapi:FuzzPutBody
.PHONY: fuzz
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do IFS=: read -r m p f <<<"$$t"; echo "== fuzz $$m $$p $$f"; \
	  (cd $$m && GOWORK=off $(GO) test -count=1 -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$p); done

## race: the race detector over the concurrent packages
race:
	@set -e; for m in $(MODULES); do echo "== race $$m"; (cd $$m && GOWORK=off $(GO) test -count=1 -race ./...); done

## metrics: the metrics store (VictoriaMetrics, :8428), vmalert (:8880) and the NATS exporter for a running `make run`
metrics:
	deployments/observability/run.sh

## tracing: Jaeger v2 alone (OTLP :4318, query API :16686), for services started by hand
tracing:
	deployments/tracing/run.sh

## check-tracing: the stack exporting to a real Jaeger, one order placed, its trace read back whole
check-tracing:
	deployments/tracing/check.sh

## check-schemas: every event schema version accepts the events of the versions before it, and every version
## contract.json produces is one PREVIOUS_RELEASE already reads (tools/schemacompat, in CI; docs/releasing.md)
# PREVIOUS_RELEASE is the last release: ec9e940 reads order.created and order.confirmed v2 and produces v1.
PREVIOUS_RELEASE ?= ec9e940
check-schemas:
	$(GO) run ./tools/cmd/schemacompat -previous $(PREVIOUS_RELEASE)

## check-alerts: alert rules, their unit tests (vmalert-tool), dashboards and scrape configs (deployments/observability)
check-alerts:
	deployments/observability/check.sh

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

.PHONY: chaos

## chaos: 45s of load (~1.5 min in all) with two instances of every service sharing the durables, while
## instances are SIGKILLed, the gateway fails, NATS restarts and duplicate and poison events are injected;
## fails on any broken invariant (docs/guarantees.md, "Chaos runs").
## A longer one: go run ./tools/cmd/loadgen -chaos -instances 2 -duration 10m -port-offset 300 -mode open -rate 20
chaos:
	$(GO) run ./tools/cmd/loadgen -chaos -instances 2 -duration 45s -port-offset 300 -mode open -rate 20 -chaos-gap 2s

.PHONY: chaos-cluster

## chaos-cluster: the chaos run on a 3-node NATS cluster (replicas 3, route password), two instances of every
## service; its NATS fault stops one node at a time for 6-12 s (leaders move, the node comes back behind).
chaos-cluster:
	$(GO) run ./tools/cmd/loadgen -chaos -instances 2 -nats-nodes 3 -duration 45s -port-offset 400 -mode open -rate 20 -chaos-gap 2s

.PHONY: upgrade

## upgrade: a rolling upgrade under load (~2-3 min): every service starts from the binaries of git revision
## UPGRADE_FROM, two instances each, and while 60s of load run every instance is replaced by this tree's build,
## one at a time (consumers first, order-service last); fails on any broken invariant, a dead letter, a process
## left on the old build, or an audit trail where no event type shows two schema versions (docs/releasing.md,
## "Rolling upgrade test"). Needs the revision's history (a shallow clone: git fetch --unshallow).
# The release this tree replaces in service: the pair a rolling update runs side by side.
UPGRADE_FROM ?= $(PREVIOUS_RELEASE)
upgrade:
	$(GO) run ./tools/cmd/loadgen -upgrade-from $(UPGRADE_FROM) -instances 2 -duration 60s -port-offset 500 -mode open -rate 20

.PHONY: bench

## bench: the benchmark on the embedded default (devstack), both fsync settings, nats bench beside it, and what tracing costs;
## writes the figures into docs/benchmarks.md (about 15 minutes; needs the machine to itself)
bench:
	$(GO) run ./tools/cmd/bench
