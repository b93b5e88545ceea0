package service_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/eventshop/inventory-service/internal/consumer"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/deadletter"
)

// TestForgedOrderOutcomesAreRefused (issue 9, finding 6): an order outcome
// the saga cannot produce is refused (dead-lettered with its reason and
// counted), and stock never moves for it.
func TestForgedOrderOutcomesAreRefused(t *testing.T) {
	t.Parallel()
	h := start(t)
	h.setStock("MUG", "Mug", 1299, "USD", 5)
	wantRefused := func(reason string) {
		t.Helper()
		m := h.deadLetter(h.lastOrdersSeq())
		if got := m.Header.Get(deadletter.HeaderError); !strings.Contains(got, "refused ("+reason+")") {
			t.Fatalf("%s = %q, want a refusal for %s", deadletter.HeaderError, got, reason)
		}
	}

	// A confirmation of an order the inventory rejected commits nothing.
	h.created("o-rej", items("MUG", 6))
	h.event(events.InventoryRejected, "o-rej")
	h.confirmed("o-rej", 7794, "USD")
	wantRefused("illegal_transition")

	// A cancellation of a sold order puts nothing back.
	h.created("o-sold", items("MUG", 1))
	h.event(events.InventoryReserved, "o-sold")
	h.confirmed("o-sold", 1299, "USD")
	h.event(events.InventoryCommitted, "o-sold")
	h.cancelled("o-sold", events.ReasonTimeout)
	wantRefused("illegal_transition")

	// A confirmation for another total than the reservation's sells
	// nothing; the true one, stored after it, does.
	h.created("o-cheap", items("MUG", 2))
	h.event(events.InventoryReserved, "o-cheap")
	h.confirmed("o-cheap", 1, "USD")
	wantRefused("amount_mismatch")
	if it := h.item("MUG"); it.Reserved != 2 || it.Sold != 1 {
		t.Fatalf("after the forged confirmation MUG = %+v, want o-cheap's 2 still reserved", it)
	}
	h.redeliver(events.OrderConfirmed, "o-cheap", events.OrderConfirmedData{OrderID: "o-cheap", CustomerID: "c-1", TotalCents: 2598, Currency: "USD"})

	h.settled()
	if it := h.item("MUG"); it.Available != 2 || it.Reserved != 0 || it.Sold != 3 {
		t.Fatalf("MUG = %+v, want 2 available, 3 sold (o-sold, o-cheap)", it)
	}
	if n := h.count("inventory.*.released"); n != 0 {
		t.Fatalf("%d released events, want none", n)
	}
	status, body := h.do(http.MethodGet, "/metrics", "", "")
	for _, want := range []string{
		`eventshop_events_refused_total{consumer="` + consumer.Durable + `",reason="illegal_transition"`,
		`eventshop_events_refused_total{consumer="` + consumer.Durable + `",reason="amount_mismatch"`,
	} {
		if status != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("metrics lack %s:\n%s", want, grep(body, "refused"))
		}
	}
}
