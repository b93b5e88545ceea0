package loadgen

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/tools/stack"
)

// auditWith stores blocks in the AUDIT stream of a real embedded
// nats-server, each block's entries auditing events of the given type and
// dataschema version ("" for none), as the audit service writes them.
func auditWith(t *testing.T, blocks ...[][2]string) jetstream.JetStream {
	t.Helper()
	n, err := stack.StartNATS(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Shutdown)
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "AUDIT", Subjects: []string{"audit.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	index := 0
	for _, b := range blocks {
		var entries []string
		for _, e := range b {
			index++
			schema := ""
			if e[1] != "" {
				schema = "https://schemas.eventshop.dev/events/" + strings.TrimPrefix(e[0], "shop.") + "/" + e[1] + ".json"
			}
			entries = append(entries, fmt.Sprintf(`{"index":%d,"event_id":"e-%d","type":%q,"event":{"specversion":"1.0","id":"e-%d","type":%q,"dataschema":%q,"data":{}}}`,
				index, index, e[0], index, e[0], schema))
		}
		body := fmt.Sprintf(`{"first":%d,"count":%d,"entries":[%s]}`, index-len(b)+1, len(b), strings.Join(entries, ","))
		if _, err := js.Publish(ctx, "audit.blocks", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, "audit.blocks", []byte("not a block")); err != nil {
		t.Fatal(err)
	}
	return js
}

func TestAuditVersions(t *testing.T) {
	t.Parallel()
	const created, confirmed = "shop.order.created", "shop.order.confirmed"
	tests := []struct {
		name      string
		blocks    [][][2]string
		changed   []string // types whose produced version the upgrade changes
		want      Versions
		wantMixed []string
		wantText  string
		wantCheck string // the violation, "" for none
	}{
		{
			name:      "one version of a type the upgrade changes: the upgrade was not exercised",
			blocks:    [][][2]string{{{created, "v1"}, {confirmed, "v1"}}, {{created, "v1"}}},
			changed:   []string{created},
			want:      Versions{created: {"v1": 2}, confirmed: {"v1": 1}},
			wantText:  "audit trail: shop.order.confirmed v1 1\naudit trail: shop.order.created v1 2\n",
			wantCheck: "the upgrade was not exercised: shop.order.created changes version in this upgrade, and the audit trail holds it in one version (v1)",
		},
		{
			name:     "one version of everything, and no version changes",
			blocks:   [][][2]string{{{created, "v1"}, {confirmed, "v1"}}, {{created, "v1"}}},
			want:     Versions{created: {"v1": 2}, confirmed: {"v1": 1}},
			wantText: "audit trail: shop.order.confirmed v1 1\naudit trail: shop.order.created v1 2\n",
		},
		{
			name:      "the producer's new version beside the old one",
			blocks:    [][][2]string{{{created, "v1"}, {confirmed, "v1"}}, {{created, "v2"}, {created, "v10"}, {confirmed, "v1"}, {created, "v2"}}},
			want:      Versions{created: {"v1": 1, "v2": 2, "v10": 1}, confirmed: {"v1": 2}},
			changed:   []string{created},
			wantMixed: []string{created},
			wantText:  "audit trail: shop.order.confirmed v1 2\naudit trail: shop.order.created v1 1, v2 2, v10 1\n",
		},
		{
			name:      "an event without a dataschema is counted, not dropped",
			blocks:    [][][2]string{{{created, "v1"}, {created, ""}}},
			want:      Versions{created: {"v1": 1, "none": 1}},
			wantMixed: []string{created},
			wantText:  "audit trail: shop.order.created v1 1, none 1\n",
		},
		{
			name:      "an empty trail",
			want:      Versions{},
			wantText:  "",
			wantCheck: "the upgrade was not exercised: the audit trail is empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			js := auditWith(t, tt.blocks...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := AuditVersions(ctx, js)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("AuditVersions = %v, want %v", got, tt.want)
			}
			if m := got.Mixed(); !slices.Equal(m, tt.wantMixed) {
				t.Fatalf("Mixed() = %v, want %v", m, tt.wantMixed)
			}
			if text := got.Text(); text != tt.wantText {
				t.Fatalf("Text() = %q, want %q", text, tt.wantText)
			}
			check := got.Check(tt.changed)
			switch {
			case tt.wantCheck == "" && len(check) > 0:
				t.Fatalf("Check() = %q, want no violation", check)
			case tt.wantCheck != "" && !slices.Equal(check, []string{tt.wantCheck}):
				t.Fatalf("Check() = %q, want %q", check, tt.wantCheck)
			}
		})
	}
}

func TestSchemaVersion(t *testing.T) {
	t.Parallel()
	for uri, want := range map[string]string{
		"https://schemas.eventshop.dev/events/order.created/v2.json":  "v2",
		"https://schemas.eventshop.dev/events/order.created/v12.json": "v12",
		"https://schemas.eventshop.dev/events/order.created.json":     "https://schemas.eventshop.dev/events/order.created.json",
		"https://x/vx.json": "https://x/vx.json",
		"":                  "none",
	} {
		if got := SchemaVersion(uri); got != want {
			t.Errorf("SchemaVersion(%q) = %q, want %q", uri, got, want)
		}
	}
}
