#!/usr/bin/env bash
# run.sh: the metrics store for the local stack (`make metrics`, or beside
# the stack with `make run METRICS=1`), all on 127.0.0.1:
#   victoria-metrics :8428  scrapes every service and natsexporter every 15 s
#                          (scrape/local.yml), keeps 7 days in
#                          .data/victoria-metrics, serves vmui with the
#                          dashboards of dashboards/
#   vmalert          :8880  evaluates rules/alerts.yml against it (alerts are
#                          shown, not sent: -notifier.blackhole)
#   natsexporter     :7777  NATS's monitoring endpoint (:8222) as Prometheus
#                          metrics
# The binaries are built once into .data/bin. Logs: .data/observability/.
#   deployments/observability/run.sh                  until Ctrl-C / SIGTERM
#   deployments/observability/run.sh -- CMD [ARG...]  CMD in front; all stop when it exits
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.sh
source "$here/versions.sh"
go="${GO:-go}"
vm="$("$root/scripts/gobin" "$VM_PKG/app/victoria-metrics@$VM_VERSION")"
vmalert="$("$root/scripts/gobin" "$VM_PKG/app/vmalert@$VM_VERSION")"
(cd "$root/tools" && "$go" build -o "$root/.data/bin/natsexporter" ./cmd/natsexporter)
logs="$root/.data/observability"
mkdir -p "$logs"

pids=()
cleanup() {
	trap - EXIT INT TERM
	((${#pids[@]})) && kill -TERM "${pids[@]}" 2>/dev/null && wait "${pids[@]}" 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$vm" -httpListenAddr=127.0.0.1:8428 -storageDataPath="$root/.data/victoria-metrics" -retentionPeriod=7d \
	-promscrape.config="$here/scrape/local.yml" -vmui.customDashboardsPath="$here/dashboards" \
	-vmalert.proxyURL=http://127.0.0.1:8880 >"$logs/victoria-metrics.log" 2>&1 &
pids+=($!)
"$vmalert" -httpListenAddr=127.0.0.1:8880 -rule="$here/rules/alerts.yml" -evaluationInterval=15s \
	-datasource.url=http://127.0.0.1:8428 -remoteWrite.url=http://127.0.0.1:8428 \
	-remoteRead.url=http://127.0.0.1:8428 -notifier.blackhole >"$logs/vmalert.log" 2>&1 &
pids+=($!)
"$root/.data/bin/natsexporter" -listen 127.0.0.1:7777 -nats http://127.0.0.1:8222 >"$logs/natsexporter.log" 2>&1 &
pids+=($!)

cat <<'EOF'
metrics: dashboards http://127.0.0.1:8428/vmui/#/dashboards   queries http://127.0.0.1:8428/vmui/
         alerts     http://127.0.0.1:8880/vmalert/alerts      scrape targets http://127.0.0.1:8428/targets
EOF

if [[ "${1:-}" == "--" ]]; then
	shift
	# In the background so that a signal to this script is forwarded to it
	# (bash runs a trap only once a foreground child has exited).
	"$@" &
	child=$!
	trap 'kill -TERM $child 2>/dev/null; wait $child; exit $?' INT TERM
	wait "$child"
	exit $?
fi
wait -n "${pids[@]}" # until one of them fails, or a signal
echo "run.sh: a metrics process exited; see $logs" >&2
exit 1
