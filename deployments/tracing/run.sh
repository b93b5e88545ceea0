#!/usr/bin/env bash
# run.sh: Jaeger v2 for the local stack (`make tracing`, or beside the stack
# with `make run TRACING=1`), on 127.0.0.1:
#   :4318   OTLP over HTTP: the services export their spans here
#   :16686  the query API (/api/traces/<trace id>, /api/services); the binary
#           built from the Go module has no UI (the UI is an npm build), so
#           read a trace with `go run ./tools/cmd/tracecheck -trace <id>`
# Traces are kept in memory (100,000 of them). The binary is built once into
# .data/bin (scripts/gobin, from a per-user cache; a cold build takes about ten minutes). Log: .data/tracing/.
#   deployments/tracing/run.sh                  until Ctrl-C / SIGTERM
#   deployments/tracing/run.sh -- CMD [ARG...]  CMD in front, exporting every
#                                               span to it; all stop when it exits
# JAEGER_OTLP_PORT, JAEGER_QUERY_PORT, JAEGER_HEALTH_PORT move the ports;
# OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG pass through to the services.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.sh
source "$here/versions.sh"
jaeger="$("$root/scripts/gobin" "$JAEGER_PKG@$JAEGER_VERSION")"
logs="$root/.data/tracing"
mkdir -p "$logs"
otlp="${JAEGER_OTLP_PORT:-4318}" query="${JAEGER_QUERY_PORT:-16686}" health="${JAEGER_HEALTH_PORT:-13133}"
export JAEGER_OTLP_PORT="$otlp" JAEGER_QUERY_PORT="$query" JAEGER_HEALTH_PORT="$health"

"$jaeger" --config "$here/jaeger.yaml" >"$logs/jaeger.log" 2>&1 &
pid=$!
cleanup() {
	trap - EXIT INT TERM
	kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq 1 100); do
	curl -fsS "http://127.0.0.1:$health/status" >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { echo "run.sh: jaeger exited; see $logs/jaeger.log" >&2; exit 1; }
	sleep 0.1
done
echo "tracing: OTLP http://127.0.0.1:$otlp   query API http://127.0.0.1:$query/api/traces/<trace id>"

if [[ "${1:-}" == "--" ]]; then
	shift
	export OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$otlp"
	"$@" &
	child=$!
	trap 'kill -TERM $child 2>/dev/null; wait $child; exit $?' INT TERM
	wait "$child"
	exit $?
fi
wait "$pid"
echo "run.sh: jaeger exited; see $logs/jaeger.log" >&2
exit 1
