package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/api"
)

// shop is the state of a finished run as the checker reads it: the events
// in the domain streams (stored on a real embedded nats-server, final
// events seen by the runner's own subscription), the audit chain's blocks
// in AUDIT and its dead letters in DLQ, and what the services answer over
// HTTP (served by httptest stand-ins with the services' JSON shapes: the
// tools module builds no service, and a full stack per case would be an
// end-to-end run).
type shop struct {
	stock     int64
	orders    []*placed
	events    []stored            // in publish order
	inventory map[string][3]int64 // SKU -> available, reserved, sold
	charges   map[string][2]int   // order -> successful charges, refunds
	notes     map[string]int      // order -> notifications
	audited   []string            // event ids in the AUDIT blocks, in chain order
	verifyOK  bool                // what GET /audit/verify says of the chain
	lettered  map[string]bool     // event ids ("poison-...") the audit dead-lettered
}

type stored struct {
	subject, id string
	refused     bool // published, but refused by the stream
}

// healthy is a run where every invariant holds: o-1 confirmed (2 units of
// sku-1 sold, charged once), o-2 declined and cancelled (its reservation
// released), each notified once, every event audited once, and a poison
// message on ORDERS dead-lettered by the audit.
func healthy() *shop {
	s := &shop{
		stock: 10,
		orders: []*placed{
			{id: "o-1", lines: []api.Item{{SKU: "sku-1", Quantity: 2}}},
			{id: "o-2", lines: []api.Item{{SKU: "sku-1", Quantity: 1}}, decline: true},
		},
		inventory: map[string][3]int64{"sku-1": {8, 0, 2}},
		charges:   map[string][2]int{"o-1": {1, 0}, "o-2": {0, 0}},
		notes:     map[string]int{"o-1": 1, "o-2": 1},
		verifyOK:  true,
		lettered:  map[string]bool{"poison-1": true},
	}
	s.saga("o-1", "orders.%s.created", "inventory.%s.reserved", "payments.%s.succeeded", "orders.%s.confirmed", "inventory.%s.committed", "notifications.%s.sent")
	s.saga("o-2", "orders.%s.created", "inventory.%s.reserved", "payments.%s.failed", "orders.%s.cancelled", "inventory.%s.released", "notifications.%s.sent")
	s.events = append(s.events, stored{subject: "orders.poison-1.created", id: "poison-1"})
	return s
}

// saga stores one event per subject pattern about order, each audited.
func (s *shop) saga(order string, subjects ...string) {
	for _, p := range subjects {
		subj := fmt.Sprintf(p, order)
		id := "e-" + strings.ReplaceAll(subj, ".", "-")
		s.events = append(s.events, stored{subject: subj, id: id})
		s.audited = append(s.audited, id)
	}
}

func startNATS(t *testing.T) string {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv.ClientURL()
}

// check builds s for real and returns what the checker finds.
func (s *shop) check(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, err := nats.Connect(startNATS(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for name, subj := range map[string]string{"ORDERS": "orders.>", "INVENTORY": "inventory.>", "PAYMENTS": "payments.>",
		"NOTIFICATIONS": "notifications.>", "AUDIT": "audit.>", "DLQ": "dlq.>"} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}, Storage: jetstream.FileStorage}); err != nil {
			t.Fatal(err)
		}
	}

	var inv sync.Mutex // the stand-ins read s while the checker runs
	serve := func(h func(r *http.Request) any) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inv.Lock()
			v := h(r)
			inv.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(v) // a failed write fails the checker's read
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	r, err := New(Config{
		OrderURL: "http://127.0.0.1:1", AdminToken: "unused", StockPerSKU: s.stock, CheckPatience: time.Millisecond, Check: true,
		InventoryURL: serve(func(r *http.Request) any {
			st := s.inventory[strings.TrimPrefix(r.URL.Path, "/inventory/")]
			return map[string]int64{"available": st[0], "reserved": st[1], "sold": st[2]}
		}),
		GatewayURL: serve(func(r *http.Request) any {
			c := s.charges[r.URL.Query().Get("order_id")]
			return map[string]int{"succeeded": c[0], "refunded": c[1]}
		}),
		NotificationURL: serve(func(r *http.Request) any {
			return map[string]any{"notifications": make([]struct{}, s.notes[r.URL.Query().Get("order_id")])}
		}),
		AuditURL: serve(func(*http.Request) any { return map[string]any{"ok": s.verifyOK, "entries": len(s.audited)} }),
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r.skus = []string{"sku-1"}
	r.orders = s.orders

	// The final events reach the runner as in Run: a watch on the final
	// events stored in ORDERS.
	stop, err := r.watchFinals(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	wantFinals := int64(0)
	for _, e := range s.events {
		data := fmt.Sprintf(`{"id":%q}`, e.id)
		if strings.HasPrefix(e.id, "poison-") {
			data = "\x00 not an event"
		}
		if e.refused {
			// A decision that lost a race: published after an event that
			// is no longer the order's last, so the stream refuses it.
			if _, err := js.Publish(ctx, e.subject, []byte(data), jetstream.WithExpectLastSequencePerSubject(1<<40)); err == nil {
				t.Fatalf("the stream stored %s, published after a sequence it never had", e.subject)
			}
			continue
		}
		ack, err := js.Publish(ctx, e.subject, []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(e.subject, ".confirmed") || strings.HasSuffix(e.subject, ".cancelled") {
			wantFinals++
		}
		if s.lettered[e.id] {
			if _, err := js.Publish(ctx, fmt.Sprintf("dlq.audit-orders.%s.%d", ack.Stream, ack.Sequence), []byte(data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < len(s.audited); i += 4 { // blocks of up to 4 entries, as the audit stores them
		type entry struct {
			Index   int    `json:"index"`
			EventID string `json:"event_id"`
		}
		var b struct {
			First   int     `json:"first"`
			Count   int     `json:"count"`
			Entries []entry `json:"entries"`
		}
		b.First = i + 1
		for j, id := range s.audited[i:min(i+4, len(s.audited))] {
			b.Entries = append(b.Entries, entry{Index: i + j + 1, EventID: id})
		}
		b.Count = len(b.Entries)
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, "audit.blocks", raw); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.finalsSeen.Load() < wantFinals {
		if time.Now().After(deadline) {
			t.Fatalf("the runner saw %d final events of %d", r.finalsSeen.Load(), wantFinals)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r.check(ctx, nc)
}

// TestCheckCatchesBrokenInvariants: the invariant checker of the chaos
// runs, fed a healthy run and then runs each broken in one way, finds
// nothing in the first and names each break.
func TestCheckCatchesBrokenInvariants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		break_ func(s *shop)
		want   []string // each must be in some violation; none: no violation at all
	}{
		{name: "healthy run", break_: func(*shop) {}},
		{
			name: "oversell: the last units sold twice",
			break_: func(s *shop) {
				s.orders = append(s.orders, &placed{id: "o-3", lines: []api.Item{{SKU: "sku-1", Quantity: 9}}})
				s.saga("o-3", "orders.%s.created", "inventory.%s.reserved", "payments.%s.succeeded", "orders.%s.confirmed", "inventory.%s.committed", "notifications.%s.sent")
				s.charges["o-3"], s.notes["o-3"] = [2]int{1, 0}, 1
				// Every unit is accounted for (the sum still holds), but
				// 11 were sold of 10.
				s.inventory["sku-1"] = [3]int64{-1, 0, 11}
			},
			want: []string{"SKU sku-1 oversold: available -1, reserved 0, sold 11 of an initial 10"},
		},
		{
			name:   "double charge",
			break_: func(s *shop) { s.charges["o-1"] = [2]int{2, 0} },
			want:   []string{"confirmed order o-1 has 2 successful charges (0 refunded), want 1 kept"},
		},
		{
			name:   "cancelled order left charged",
			break_: func(s *shop) { s.charges["o-2"] = [2]int{1, 0} },
			want:   []string{"cancelled order o-2 stays charged"},
		},
		{
			name: "lost order: accepted, then nothing",
			break_: func(s *shop) {
				s.orders = append(s.orders, &placed{id: "o-3", lines: []api.Item{{SKU: "sku-1", Quantity: 1}}})
			},
			want: []string{"order o-3 never reached a final state"},
		},
		{
			name: "stuck order: reserved, never finished",
			break_: func(s *shop) {
				s.orders = append(s.orders, &placed{id: "o-3", lines: []api.Item{{SKU: "sku-1", Quantity: 1}}})
				s.saga("o-3", "orders.%s.created", "inventory.%s.reserved")
				s.inventory["sku-1"] = [3]int64{7, 1, 2}
			},
			want: []string{"order o-3 never reached a final state", "SKU sku-1: 1 units still reserved"},
		},
		{
			name:   "sold stock no confirmed order holds",
			break_: func(s *shop) { s.inventory["sku-1"] = [3]int64{7, 0, 3} },
			want:   []string{"SKU sku-1: sold 3, confirmed orders hold 2"},
		},
		{
			name:   "declined card confirmed",
			break_: func(s *shop) { s.orders[0].decline = true },
			want:   []string{"order o-1 (unknown SKU false, declined card true) is CONFIRMED, want CANCELLED"},
		},
		{
			name:   "confirmed and cancelled",
			break_: func(s *shop) { s.saga("o-1", "orders.%s.cancelled") },
			want:   []string{"order o-1 has both a confirmed and a cancelled event"},
		},
		{
			name: "a racing decision the stream refused is not an event",
			break_: func(s *shop) {
				s.events = append(s.events, stored{subject: "orders.o-1.cancelled", id: "e-lost-race", refused: true})
			},
		},
		{
			name:   "missing notification",
			break_: func(s *shop) { delete(s.notes, "o-2") },
			want:   []string{"order o-2 has 0 notifications, want 1"},
		},
		{
			name:   "notified twice",
			break_: func(s *shop) { s.notes["o-1"] = 2 },
			want:   []string{"order o-1 has 2 notifications, want 1"},
		},
		{
			name:   "chain that does not verify",
			break_: func(s *shop) { s.verifyOK = false },
			want:   []string{"audit verify = 200 ok=false"},
		},
		{
			name:   "event left out of the chain",
			break_: func(s *shop) { s.audited = slices.Delete(s.audited, 2, 3) },
			want:   []string{"audit holds 11 entries; the streams hold 12 distinct events"},
		},
		{
			name:   "event swapped for a forged one",
			break_: func(s *shop) { s.audited[2] = "e-forged" },
			want:   []string{"event e-payments-o-1-succeeded at PAYMENTS seq 1 (payments.o-1.succeeded) is not in the audit chain", "audit holds event e-forged, which no domain stream holds"},
		},
		{
			name:   "event audited twice",
			break_: func(s *shop) { s.audited = append(s.audited, s.audited[0]) },
			want:   []string{"audit holds event e-orders-o-1-created 2 times"},
		},
		{
			name:   "poison neither audited nor dead-lettered",
			break_: func(s *shop) { delete(s.lettered, "poison-1") },
			want:   []string{"is not an event, yet the audit did not dead-letter it"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := healthy()
			tt.break_(s)
			got := s.check(t)
			if len(tt.want) == 0 && len(got) != 0 {
				t.Fatalf("violations of a healthy run: %q", got)
			}
			for _, w := range tt.want {
				if !slices.ContainsFunc(got, func(v string) bool { return strings.Contains(v, w) }) {
					t.Errorf("violations = %q, want one saying %q", got, w)
				}
			}
		})
	}
}
