# shellcheck shell=bash disable=SC2034,SC2154 # variables shared with the sourcing scripts
# lib.sh: what compose-smoke.sh and compose-cluster.sh share. Sourced, not
# run. Every HTTP call goes to a port the compose files publish on 127.0.0.1.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export TAG="${TAG:-dev}"
export ADMIN_TOKEN="${ADMIN_TOKEN:-ci-admin-token}"

log() { echo "[$(date +%T)] $*"; }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# bound_time re-runs the calling script under timeout(1), once, so a hang
# anywhere (compose, a container that never answers) still ends the run; the
# EXIT trap then tears the stack down.
bound_time() { # seconds "$0" "$@"
	local limit="$1"
	shift
	if [[ -z "${EVENTSHOP_CI_BOUNDED:-}" ]]; then
		export EVENTSHOP_CI_BOUNDED=1
		exec timeout -k 30 "$limit" bash "$@"
	fi
}

# require_docker exits 0 with a loud notice when no Docker engine answers:
# the compose checks need one, the rest of CI does not.
require_docker() {
	if ! docker info >/dev/null 2>&1; then
		cat <<'EOF'
################################################################
##  SKIPPED: docker daemon not reachable (docker info failed)  ##
##  the compose checks did NOT run                             ##
################################################################
EOF
		exit 0
	fi
}

# require_tools makes sure curl and jq exist, installing them from Debian's
# packages when running as root on a machine that lacks them.
require_tools() {
	local missing=()
	for t in curl jq timeout; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	((${#missing[@]} == 0)) && return 0
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		log "installing ${missing[*]}"
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl jq coreutils >/dev/null
		return 0
	fi
	fail "missing tools: ${missing[*]}"
}

# The Compose tool that is installed: the v2 plugin or the standalone
# docker-compose (v1 or v2); the files work with both.
compose_cmd() {
	if docker compose version >/dev/null 2>&1; then
		compose_bin=(docker compose)
	elif command -v docker-compose >/dev/null 2>&1; then
		compose_bin=(docker-compose)
	else
		fail "neither 'docker compose' nor 'docker-compose' is installed"
	fi
}

# compose runs the Compose tool on this run's project ($project, $compose_file).
compose() { "${compose_bin[@]}" -p "$project" -f "$compose_file" "$@"; }

# container prints the id of a service's container.
container() {
	local id
	id="$(compose ps -q "$1")"
	[[ -n "$id" ]] || fail "no container for service $1"
	echo "$id"
}

# start_stack builds the images (unless SKIP_BUILD=1), checks the ports are
# free and starts the stack detached, never building or pulling. It arms
# the EXIT trap that removes the stack and its volumes.
start_stack() {
	trap teardown EXIT
	trap 'exit 143' TERM INT
	if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
		log "building images (deployments/docker/build-local.sh)"
		"$root/deployments/docker/build-local.sh"
	fi
	local p
	for p in "${service_ports[@]}" "$@"; do
		if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			fail "port 127.0.0.1:$p is already in use (make run? another stack?)"
		fi
	done
	stack_started=$SECONDS
	log "compose up ($project, ${compose_file##*/})"
	compose up -d --no-build
}

teardown() {
	local rc=$?
	trap - EXIT
	if ((rc != 0)); then
		echo "---- failure (exit $rc): containers and last log lines ----" >&2
		compose ps >&2 || true
		compose logs --no-color --tail=25 >&2 || true
		# Dead letters explain most stuck orders: say how many and why.
		echo "---- DLQ: $(curl -s --max-time 5 'http://127.0.0.1:8222/jsz?streams=true' |
			jq -c '[.account_details[]?.stream_detail[]? | select(.name == "DLQ") | .state.messages]' 2>/dev/null) messages" >&2
		compose logs --no-color 2>/dev/null | grep '"message dead-lettered"' | cut -c1-600 >&2 || true
	fi
	[[ -n "${orders_file:-}" ]] && rm -f "$orders_file"
	log "compose down -v ($project)"
	compose down -v --remove-orphans -t 10 >/dev/null 2>&1 || compose down -v -t 10 || true
	exit "$rc"
}

# Host ports of the services, and which service listens on each.
service_ports=(8080 8081 8082 8083 8084 8090)
order_url=http://127.0.0.1:8080
inventory_url=http://127.0.0.1:8081
notification_url=http://127.0.0.1:8083
audit_url=http://127.0.0.1:8084
gateway_url=http://127.0.0.1:8090

# get prints the body of a GET, or nothing (and status 1) unless it is 200.
get() { curl -fsS --max-time 5 "$1" 2>/dev/null; }

# code prints the HTTP status of a GET (000 when nothing answers).
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true; }

# wait_ready waits until every service answers /ready with 200.
wait_ready() { # deadline-seconds
	local end=$((SECONDS + $1)) p pending
	while :; do
		pending=()
		for p in "${service_ports[@]}"; do
			[[ "$(code "http://127.0.0.1:$p/ready")" == 200 ]] || pending+=("$p")
		done
		((${#pending[@]} == 0)) && return 0
		((SECONDS < end)) || fail "not ready after $1s: ports ${pending[*]}"
		sleep 0.5
	done
}

# put_sku sets a SKU's catalogue entry and stock (admin endpoint).
put_sku() { # sku price available
	local c
	c="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X PUT "$inventory_url/inventory/$1" \
		-H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
		-d "{\"name\":\"Item $1\",\"price_cents\":$2,\"currency\":\"USD\",\"available\":$3}")"
	[[ "$c" == 200 || "$c" == 201 ]] || fail "PUT /inventory/$1 answered $c"
	initial_stock[$1]=$3
}

# post_order places an order, retrying with the same Idempotency-Key until
# the order service accepts it (202) or retry_for seconds pass, as a client
# must while the system fails over. It records "id sku qty" in $orders_file
# and counts retries in post_retries.
post_order() { # key sku qty token
	local key="$1" sku="$2" qty="$3" token="$4" end=$((SECONDS + ${retry_for:-30})) out c body
	while :; do
		out="$(curl -s --max-time 10 -w '\n%{http_code}' -X POST "$order_url/orders" \
			-H "Idempotency-Key: $key" -H 'Content-Type: application/json' \
			-d "{\"customer_id\":\"c-ci\",\"items\":[{\"sku\":\"$sku\",\"quantity\":$qty}],\"payment_token\":\"$token\"}" || true)"
		c="${out##*$'\n'}"
		body="${out%$'\n'*}"
		if [[ "$c" == 202 ]]; then
			echo "$(jq -r .order_id <<<"$body") $sku $qty" >>"$orders_file"
			return 0
		fi
		((SECONDS < end)) || fail "POST /orders (key $key) still answers ${c:-nothing} after ${retry_for:-30}s: $body"
		post_retries=$((post_retries + 1))
		sleep 0.5
	done
}

# check_orders waits until every order in $orders_file is final and
# consistent, or fails after deadline seconds with what is still wrong:
#   - final status (CONFIRMED or CANCELLED), no order lost;
#   - charged exactly once: CONFIRMED has one charge, succeeded;
#     payment_declined one charge, declined; other cancellations none;
#   - one notification per order;
#   - an audit timeline without a duplicate event type, 6 events (4 when
#     inventory rejected the order);
#   - stock conserved per SKU: available + reserved + sold == initial,
#     nothing left reserved, sold == the quantities of confirmed orders;
#   - the audit chain verifies and holds exactly the orders' events.
# An order that passes is not read again: all of the above only ever grows
# to its final value, and a read that fails or times out is simply retried.
declare -A order_done=() # order id -> "status events sku qty"
check_orders() { # deadline-seconds
	local end=$((SECONDS + $1)) next_note=$((SECONDS + 5)) problems id sku qty o status reason ch n tl types ntypes want
	local total_events confirmed cancelled
	local -A sold
	while :; do
		problems=()
		while read -r id sku qty; do
			[[ -n "${order_done[$id]:-}" ]] && continue
			o="$(get "$order_url/orders/$id")" || {
				problems+=("$id: GET /orders answered $(code "$order_url/orders/$id")")
				continue
			}
			status="$(jq -r .status <<<"$o")"
			reason="$(jq -r '.cancel_reason // ""' <<<"$o")"
			if [[ "$status" != CONFIRMED && "$status" != CANCELLED ]]; then
				problems+=("$id: status $status")
				continue
			fi
			ch="$(curl -fsS --max-time 5 -H "Authorization: Bearer $ADMIN_TOKEN" "$gateway_url/charges?order_id=$id" 2>/dev/null)" || {
				problems+=("$id: GET /charges failed")
				continue
			}
			n="$(jq -r '"\(.charges // [] | length)/\(.succeeded // 0)"' <<<"$ch")"
			case "$status/$reason" in
			CONFIRMED/*) want=1/1 ;;
			CANCELLED/payment_declined) want=1/0 ;;
			*) want=0/0 ;;
			esac
			if [[ "$n" != "$want" ]]; then
				problems+=("$id ($status $reason): charges/succeeded $n, want $want")
				continue
			fi
			n="$(get "$notification_url/notifications?order_id=$id" | jq -r '.notifications | length')" || n='?'
			if [[ "$n" != 1 ]]; then
				problems+=("$id: $n notifications, want 1")
				continue
			fi
			tl="$(get "$audit_url/audit/orders/$id")" || {
				problems+=("$id: GET /audit/orders answered $(code "$audit_url/audit/orders/$id")")
				continue
			}
			types="$(jq -r '.entries | length' <<<"$tl")"
			ntypes="$(jq -r '[.entries[].type] | unique | length' <<<"$tl")"
			want=6
			[[ "$reason" == insufficient_stock || "$reason" == unknown_sku ]] && want=4
			if [[ "$types" != "$ntypes" ]]; then
				# Create-once events: a repeated type never heals; stop here.
				printf '  %s\n' "$id: audit timeline repeats an event type: $(jq -c '[.entries[].type]' <<<"$tl")" >&2
				fail "duplicate event in an order's audit timeline"
			fi
			if [[ "$types" != "$want" ]]; then
				problems+=("$id ($status $reason): $types audit events, want $want")
				continue
			fi
			order_done[$id]="$status $types $sku $qty"
		done <"$orders_file"
		total_events=0 confirmed=0 cancelled=0
		sold=()
		if ((${#problems[@]} == 0)); then
			for id in "${!order_done[@]}"; do
				read -r status types sku qty <<<"${order_done[$id]}"
				total_events=$((total_events + types))
				if [[ "$status" == CONFIRMED ]]; then
					confirmed=$((confirmed + 1))
					sold[$sku]=$((${sold[$sku]:-0} + qty))
				else
					cancelled=$((cancelled + 1))
				fi
			done
			for sku in "${!initial_stock[@]}"; do
				o="$(get "$inventory_url/inventory/$sku")" || {
					problems+=("GET /inventory/$sku failed")
					continue
				}
				n="$(jq -r '"\(.available + .reserved + .sold) \(.reserved) \(.sold)"' <<<"$o")"
				[[ "$n" == "${initial_stock[$sku]} 0 ${sold[$sku]:-0}" ]] ||
					problems+=("$sku: available+reserved+sold, reserved, sold = $n; want ${initial_stock[$sku]} 0 ${sold[$sku]:-0}")
			done
			o="$(get "$audit_url/audit/verify")" || o='{}'
			n="$(jq -r '"\(.ok) \(.entries)"' <<<"$o")"
			[[ "$n" == "true $total_events" ]] || problems+=("audit verify: ok entries = $n; want true $total_events")
		fi
		if ((${#problems[@]} == 0)); then
			log "${#order_done[@]} orders final: $confirmed confirmed, $cancelled cancelled; charges as expected (one per paid or declined order), one notification each; stock conserved; audit chain ok with $total_events entries"
			return 0
		fi
		if ((SECONDS >= end)); then
			printf '  %s\n' "${problems[@]}" >&2
			fail "orders not consistent after $1s (${#problems[@]} problems above)"
		fi
		if ((SECONDS >= next_note)); then # say what it waits for, now and then
			log "waiting: ${#problems[@]} open, e.g. ${problems[0]}"
			next_note=$((SECONDS + 5))
		fi
		sleep 1
	done
}
