#!/usr/bin/env bash
# compose-smoke.sh proves docker-compose.yml on this machine's Docker engine:
# it builds the images (deployments/docker/build-local.sh: no registry
# needed), starts the stack, walks through the README with curl, then kills
# the inventory and payment services while orders are in flight and checks
# that every order still ends final, charged at most once, with stock
# conserved and the audit chain intact. Exits 0 with a loud SKIPPED when no
# Docker engine answers. `make compose-smoke` runs it.
#
# Env: SKIP_BUILD=1 reuses existing images; TAG, ADMIN_TOKEN as in compose.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bound_time "${CI_TIMEOUT:-480}" "$0" "$@"

require_docker
require_tools
compose_cmd
project="eventshop-smoke-$$"
compose_file="$root/docker-compose.yml"
orders_file="$(mktemp)"
declare -A initial_stock=()
post_retries=0

start_stack 4222 8222 8428 8880 16686
wait_ready 120
log "stack ready in $((SECONDS - stack_started))s after 'compose up' (6 services /ready 200)"
[[ "$(get http://127.0.0.1:8222/healthz | jq -r .status)" == ok ]] || fail "nats /healthz is not ok"

# The README walkthrough.
put_sku SKU-1 1299 100
put_sku SKU-RARE 500 1
post_order readme-demo-1 SKU-1 2 tok_visa
id="$(head -1 "$orders_file" | cut -d' ' -f1)"
# Replaying the key answers the same order, not a second one.
replay="$(curl -s -X POST "$order_url/orders" -H 'Idempotency-Key: readme-demo-1' \
	-d '{"customer_id":"c-ci","items":[{"sku":"SKU-1","quantity":2}],"payment_token":"tok_visa"}' | jq -r .order_id)"
[[ "$replay" == "$id" ]] || fail "Idempotency-Key replay answered order $replay, want $id"
end=$((SECONDS + 30))
until [[ "$(get "$order_url/orders/$id" | jq -r .status)" == CONFIRMED ]]; do
	((SECONDS < end)) || fail "order $id not CONFIRMED after 30s: $(get "$order_url/orders/$id")"
	sleep 0.3
done
log "README walkthrough: order $id CONFIRMED"

# Kill inventory and payment right after a few orders, place more while
# they are down, then start them again (docker kill counts as a manual stop
# for restart: unless-stopped, so the restart is explicit).
tokens=(tok_visa tok_mastercard tok_chargeDeclined tok_amex)
for i in 1 2 3 4; do post_order "kill-a-$i" SKU-1 "$i" "${tokens[i % 4]}"; done
post_order kill-a-rare SKU-RARE 2 tok_visa # more than the stock: rejected
inv="$(container inventory-service)"
pay="$(container payment-service)"
docker kill "$inv" "$pay" >/dev/null
log "killed inventory-service and payment-service"
for i in 1 2 3 4 5; do post_order "kill-b-$i" SKU-1 "$i" "${tokens[i % 4]}"; done
sleep 2
docker start "$inv" "$pay" >/dev/null
log "started them again"
wait_ready 60
check_orders 90

# The metrics store (deployments/observability): every service, the gateway
# and the NATS exporter scraped and up, the charges of the orders above in
# it, the dashboard served by vmui and the alert rules loaded by vmalert.
vm=http://127.0.0.1:8428
end=$((SECONDS + 60))
until [[ "$(get "$vm/api/v1/targets" | jq '[.data.activeTargets[] | select(.health == "up")] | length')" == 7 ]] &&
	get "$vm/api/v1/query?query=sum(eventshop_payment_charges_total)" | jq -e '(.data.result[0].value[1] // "0" | tonumber) > 0' >/dev/null; do
	((SECONDS < end)) || fail "metrics store after 60s: targets $(get "$vm/api/v1/targets" |
		jq -c '[.data.activeTargets[]? | {job: .labels.job, health, lastError}]'), charges $(get "$vm/api/v1/query?query=sum(eventshop_payment_charges_total)")"
	sleep 2
done
[[ "$(get "$vm/vmui/custom-dashboards" | jq -r '[.dashboardsSettings[].title] | join(",")')" == eventshop ]] ||
	fail "vmui does not serve the eventshop dashboard: $(get "$vm/vmui/custom-dashboards")"
rules="$(get http://127.0.0.1:8880/api/v1/rules | jq '[.data.groups[].rules[]] | length')"
((rules > 0)) || fail "vmalert has no rules loaded"
log "metrics store: 7 targets up, charges recorded, dashboard served, $rules alert rules in vmalert"

# Traces (deployments/tracing): an order placed now is one whole trace in
# Jaeger's query API: all six processes, one root, no span without its parent.
(cd "$root/tools" && ADMIN_TOKEN="${ADMIN_TOKEN:-change-me}" go run ./cmd/tracecheck -order "$order_url" \
	-inventory http://127.0.0.1:8081 -jaeger http://127.0.0.1:16686 -timeout 60s) || fail "no whole trace in Jaeger"
log "traces: one order's trace read back whole from Jaeger"

log "compose-smoke: PASS ($(wc -l <"$orders_file") orders, ${SECONDS}s in all)"
