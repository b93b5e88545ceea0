#!/usr/bin/env bash
# check.sh (`make check-alerts`): the observability files checked by the
# tools that load them, so a broken rule or panel fails CI, not a page:
#   1. the alert rules load in vmalert (-dryRun: the YAML and every MetricsQL
#      expression parse);
#   2. vmalert-tool unittest runs rules/*_test.yml: each alert fires on the
#      series that should page and stays quiet on those that should not;
#   3. every dashboard is a vmui dashboard and each panel's expression loads
#      in vmalert (as a recording rule);
#   4. every metric named in rules and dashboards is registered by the Go
#      code or listed in proposed-metrics.txt (a misspelt name is an alert
#      that can never fire);
#   5. the scrape configs load in victoria-metrics (-promscrape.config.dryRun).
# The VictoriaMetrics binaries are built once into .data/bin (scripts/gobin).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.sh
source "$here/versions.sh"
vmalert="$("$root/scripts/gobin" "$VM_PKG/app/vmalert@$VM_VERSION")"
vmalert_tool="$("$root/scripts/gobin" "$VM_PKG/app/vmalert-tool@$VM_VERSION")"
vm="$("$root/scripts/gobin" "$VM_PKG/app/victoria-metrics@$VM_VERSION")"
if ! command -v jq >/dev/null; then # as deployments/ci/lib.sh: Debian's package, when root
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null
	else
		echo "check.sh: jq is needed (apt-get install jq)" >&2
		exit 1
	fi
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
quiet() { # run "$@", print its output only if it fails
	if ! "$@" >"$tmp/out" 2>&1; then
		cat "$tmp/out" >&2
		return 1
	fi
}

rules=()
for f in "$here"/rules/*.yml; do
	[[ "$f" == *_test.yml ]] || rules+=("-rule=$f")
done
echo "== vmalert -dryRun ${rules[*]#-rule=$here/}"
quiet "$vmalert" -dryRun -rule.validateTemplates "${rules[@]}"

echo "== vmalert-tool unittest rules/*_test.yml"
(cd "$here/rules" && quiet "$vmalert_tool" unittest --files="*_test.yml")
grep -E '^(SUCCESS|.*Total time)' "$tmp/out" || true

echo "== dashboards"
for d in "$here"/dashboards/*.json; do
	# the fields vmselect reads (app/vmselect/vmui.go): rows of panels with expr
	jq -e '(.title | type == "string") and (.rows | length > 0)
		and all(.rows[].panels[]; (.title | type == "string") and (.expr | type == "array" and length > 0))' \
		"$d" >/dev/null || { echo "$d: not a vmui dashboard (title, rows[].panels[].{title,expr[]})" >&2; exit 1; }
	jq -r '"groups:\n  - name: dashboard\n    rules:",
		(.rows[].panels[].expr[] | "      - record: dashboard_expr\n        expr: \(tojson)")' "$d" >"$tmp/$(basename "$d" .json).yml"
	quiet "$vmalert" -dryRun -rule="$tmp/$(basename "$d" .json).yml"
	echo "$(basename "$d"): $(jq '[.rows[].panels[]] | length' "$d") panels, $(jq '[.rows[].panels[].expr[]] | length' "$d") expressions load"
done

echo "== metric names"
# What the code registers: Name: "..." in prometheus.*Opts (tests excluded),
# and what the process and Go collectors and the scraper add.
grep -rhoE --include='*.go' --exclude='*_test.go' 'Name: *"[a-z_:][a-z0-9_:]*"' \
	"$root"/shared "$root"/*-service "$root"/tools | sed -E 's/.*"(.*)"/\1/' | sort -u >"$tmp/known"
{ grep -oE '^[a-z_:][a-z0-9_:]*' "$here/proposed-metrics.txt" || true; } | sort -u >"$tmp/proposed" # none proposed is fine
{ cat "$here"/rules/*.yml; jq -r '.rows[].panels[].expr[]' "$here"/dashboards/*.json; } |
	grep -v '^ *#' | grep -oE '\b(eventshop|nats|process|go)_[a-z0-9_]+' | sort -u >"$tmp/used"
missing=0
while read -r m; do
	base="$(sed -E 's/_(bucket|count|sum)$//' <<<"$m")"
	case "$m" in process_* | go_*) continue ;; esac
	if grep -qxF -e "$m" -e "$base" "$tmp/known"; then
		if grep -qxF -e "$m" -e "$base" "$tmp/proposed"; then
			echo "note: $base is registered now: remove it from proposed-metrics.txt"
		fi
	elif ! grep -qxF -e "$m" -e "$base" "$tmp/proposed"; then
		echo "unknown metric $m: registered by no Go code and not in proposed-metrics.txt" >&2
		missing=1
	fi
done <"$tmp/used"
((missing == 0)) || exit 1
echo "$(wc -l <"$tmp/used") metric names, all registered or proposed ($(wc -l <"$tmp/proposed") proposed)"

echo "== scrape configs"
for c in "$here"/scrape/*.yml; do
	quiet "$vm" -promscrape.config="$c" -promscrape.config.dryRun -promscrape.config.strictParse
	echo "$(basename "$c"): loads"
done
