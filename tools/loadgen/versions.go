package loadgen

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Versions counts the events of the audit trail by type and schema
// version: type ("shop.order.created") -> version ("v1") -> entries.
type Versions map[string]map[string]int

// AuditVersions reads the whole AUDIT stream and counts its entries'
// events by type and the version their dataschema names
// (https://schemas.eventshop.dev/events/order.created/v2.json is v2): the
// audit keeps each event as it was published, envelope and all.
func AuditVersions(ctx context.Context, js jetstream.JetStream) (Versions, error) {
	v := Versions{}
	err := readAudit(ctx, js, func(e auditEntry) {
		var env struct {
			Type       string `json:"type"`
			DataSchema string `json:"dataschema"`
		}
		if err := json.Unmarshal(e.Event, &env); err != nil || env.Type == "" {
			env.Type = "?" // no event: counted, not hidden (the audit check reports the entry)
		}
		if v[env.Type] == nil {
			v[env.Type] = map[string]int{}
		}
		v[env.Type][SchemaVersion(env.DataSchema)]++
	})
	if err != nil {
		return nil, fmt.Errorf("count the audited versions: %w", err)
	}
	return v, nil
}

// SchemaVersion returns the version a dataschema URI names: the last
// element of its path without ".json" ("v2"), or the whole URI when that
// is no version, "none" when it is empty.
func SchemaVersion(uri string) string {
	if uri == "" {
		return "none"
	}
	v := strings.TrimSuffix(path.Base(uri), ".json")
	if _, ok := versionNumber(v); !ok {
		return uri
	}
	return v
}

func versionNumber(v string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
	return n, err == nil && strings.HasPrefix(v, "v") && n >= 0
}

// Mixed returns, sorted, the event types audited in more than one
// version: the ones a rolling upgrade across a schema change exercised.
func (v Versions) Mixed() []string {
	var out []string
	for t, byVersion := range v {
		if len(byVersion) > 1 {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// Check returns a violation for each type in changed (produced at another
// version by the old build than by the new) that the audit trail does not
// hold in two versions: the rolling upgrade did not run old and new
// producers side by side across that change. With nothing changed, only
// an empty trail is a violation.
func (v Versions) Check(changed []string) []string {
	if len(v) == 0 {
		return []string{"the upgrade was not exercised: the audit trail is empty"}
	}
	var out []string
	for _, t := range changed {
		if !slices.Contains(v.Mixed(), t) {
			out = append(out, fmt.Sprintf("the upgrade was not exercised: %s changes version in this upgrade, and the audit trail holds it in one version (%s)",
				t, strings.Join(slices.SortedFunc(maps.Keys(v[t]), compareVersions), ", ")))
		}
	}
	return out
}

// Text renders one line per type, sorted, its versions in order:
// "audit trail: shop.order.created v1 1234, v2 987".
func (v Versions) Text() string {
	var b strings.Builder
	for _, t := range slices.Sorted(maps.Keys(v)) {
		fmt.Fprintf(&b, "audit trail: %s", t)
		for i, ver := range slices.SortedFunc(maps.Keys(v[t]), compareVersions) {
			sep := ","
			if i == 0 {
				sep = ""
			}
			fmt.Fprintf(&b, "%s %s %d", sep, ver, v[t][ver])
		}
		b.WriteString("\n")
	}
	return b.String()
}

// compareVersions orders v2 before v10, and anything else after them.
func compareVersions(a, b string) int {
	na, oka := versionNumber(a)
	nb, okb := versionNumber(b)
	switch {
	case oka && okb:
		return cmp.Compare(na, nb)
	case oka != okb:
		if oka {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}
