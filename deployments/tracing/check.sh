#!/usr/bin/env bash
# check.sh (`make check-tracing`): the whole stack, every process exporting
# its spans to a real Jaeger v2, one order placed; the check passes when
# Jaeger's query API returns that order's trace whole (tools/cmd/tracecheck:
# all six processes, one root, no span whose parent is missing). Runs beside
# `make run` (ports moved by 600) on a data directory of its own.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
go="${GO:-go}"
cd "$root"
offset=600
export JAEGER_OTLP_PORT=$((4318 + offset)) JAEGER_QUERY_PORT=$((16686 + offset)) JAEGER_HEALTH_PORT=$((13133 + offset))
export ADMIN_TOKEN="check-tracing-$RANDOM$RANDOM" OTEL_TRACES_SAMPLER=always_on OTEL_BSP_SCHEDULE_DELAY=200
data=.data/check-tracing
rm -rf "$data"
mkdir -p .data/bin
echo "check-tracing: building"
# Jaeger first, in the foreground: a cold build takes minutes (more on a busy
# machine), and the readiness waits below are for the services, not for it.
# shellcheck source=versions.sh
source "$here/versions.sh"
"$root/scripts/gobin" "$JAEGER_PKG@$JAEGER_VERSION" >/dev/null # says what it builds, and how long it took
"$go" build -o .data/bin/devstack ./tools/cmd/devstack
"$go" build -o .data/bin/tracecheck ./tools/cmd/tracecheck
"$here/run.sh" -- .data/bin/devstack -data "$data" -port-offset "$offset" -nats-monitor-port 0 -nats-sync default >"$root/.data/check-tracing.log" 2>&1 &
stack=$!
trap 'kill -TERM $stack 2>/dev/null; wait $stack 2>/dev/null || true' EXIT
echo "check-tracing: starting Jaeger and the stack (log: .data/check-tracing.log)"
for port in 8080 8081 8082 8083 8084; do
	for i in $(seq 1 600); do
		curl -fsS "http://127.0.0.1:$((port + offset))/ready" >/dev/null 2>&1 && break
		if ! kill -0 "$stack" 2>/dev/null; then
			echo "check-tracing: the stack exited:" >&2
			tail -30 "$root/.data/check-tracing.log" >&2
			exit 1
		fi
		((i % 100 == 0)) && echo "check-tracing: waiting for :$((port + offset))/ready ($((i / 10)) s)"
		sleep 0.1
	done
done
echo "check-tracing: placing an order and reading its trace from Jaeger"
.data/bin/tracecheck -order "http://127.0.0.1:$((8080 + offset))" -inventory "http://127.0.0.1:$((8081 + offset))" \
	-jaeger "http://127.0.0.1:$JAEGER_QUERY_PORT" -timeout 60s
