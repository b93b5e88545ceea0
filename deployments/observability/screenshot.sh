#!/usr/bin/env bash
# screenshot.sh: the dashboard under load, as a PNG for the docs.
#   deployments/observability/screenshot.sh [OUT.png]   (default docs/img/dashboard.png)
# Starts `make run METRICS=1` (the stack on make run's ports, with
# VictoriaMetrics, vmalert and the NATS exporter), offers 40 orders/s for
# LOAD (default 3m) with the load generator, then has headless Chromium
# (Debian's `chromium` package) draw vmui's dashboard page of the last
# 10 minutes. Everything it started is stopped at the end. It needs the
# ports of `make run` free; it takes about 5 minutes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/docs/img/dashboard.png}"
load="${LOAD:-3m}"
chromium="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [[ -z "$chromium" ]]; then
	echo "screenshot: no chromium; install Debian's package: sudo apt-get install -y chromium" >&2
	exit 1
fi
go="${GO:-go}"

logs="$root/.data/observability"
mkdir -p "$logs" "$(dirname "$out")"
export ADMIN_TOKEN="${ADMIN_TOKEN:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}"

echo "screenshot: starting make run METRICS=1 (log: $logs/screenshot-stack.log)"
(cd "$root" && exec setsid make run METRICS=1 >"$logs/screenshot-stack.log" 2>&1) &
stack=$!
stop() { kill -TERM -- "-$stack" 2>/dev/null || true; wait "$stack" 2>/dev/null || true; }
trap stop EXIT

for i in $(seq 1 180); do
	if curl -fsS -o /dev/null http://127.0.0.1:8080/ready 2>/dev/null &&
		curl -fsS -o /dev/null http://127.0.0.1:8428/health 2>/dev/null; then
		break
	fi
	if ((i == 180)); then
		echo "screenshot: the stack was not ready after 3 minutes; see $logs/screenshot-stack.log" >&2
		exit 1
	fi
	sleep 1
done

echo "screenshot: stack ready; offering 40 orders/s for $load"
(cd "$root" && "$go" run ./tools/cmd/loadgen -mode open -rate 40 -duration "$load" -skus 50 -check=false -nats-url "") |
	sed -u 's/^/screenshot: /'
echo "screenshot: waiting two scrapes (30 s) so the last minute is in"
sleep 30

url='http://127.0.0.1:8428/vmui/?#/dashboards?g0.range_input=10m&g0.relative_time=last_10_minutes'
"$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1600,3000 \
	--virtual-time-budget=30000 --screenshot="$out" "$url" 2>"$logs/screenshot-chromium.log"
echo "screenshot: wrote $out"
