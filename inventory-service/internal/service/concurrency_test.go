package service_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/eventshop/inventory-service/internal/config"
	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/events"
)

// publishAll publishes the created events of orders concurrently.
func (h *harness) publishAll(orders map[string][]events.Item) {
	h.t.Helper()
	var wg sync.WaitGroup
	for id, lines := range orders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.created(id, lines)
		}()
	}
	wg.Wait()
}

func (h *harness) waitDecided(n int) {
	h.t.Helper()
	h.eventually(fmt.Sprintf("%d decisions", n), func() (bool, string) {
		r, j := h.count("inventory.*.reserved"), h.count("inventory.*.rejected")
		return r+j == n, fmt.Sprintf("%d reserved + %d rejected", r, j)
	})
}

// TestNoOversell: K units, N > K single-unit orders handled 8 at a time.
// Exactly K must be reserved, whatever the interleaving.
func TestNoOversell(t *testing.T) {
	t.Parallel()
	const units, orders = 10, 50
	h := start(t, func(c *config.Config) { c.ConsumerConcurrency = 8 })
	h.setStock("HOT", "Limited edition", 4999, "USD", units)

	all := map[string][]events.Item{}
	for i := range orders {
		all[fmt.Sprintf("o-%02d", i)] = items("HOT", 1)
	}
	h.publishAll(all)
	h.waitDecided(orders)
	h.settled()

	if r, j := h.count("inventory.*.reserved"), h.count("inventory.*.rejected"); r != units || j != orders-units {
		t.Fatalf("%d reserved, %d rejected; want %d and %d", r, j, units, orders-units)
	}
	it := h.item("HOT")
	if it.Available != 0 || it.Reserved != units || it.Sold != 0 || it.Total() != units {
		t.Fatalf("HOT = %+v, want 0 available, %d reserved, total %d", it, units, units)
	}
	reserved := 0
	for id := range all {
		r, err := h.reservation(id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		switch r.Status {
		case stock.StatusReserved:
			reserved++
		case stock.StatusRejected:
			if r.Reason != events.ReasonInsufficientStock {
				t.Errorf("%s rejected for %s", id, r.Reason)
			}
		default:
			t.Errorf("%s is %s", id, r.Status)
		}
	}
	if reserved != units {
		t.Fatalf("%d reservation records say reserved, want %d", reserved, units)
	}
	_, metrics := h.do("GET", "/metrics", "", "")
	t.Logf("contention:\n%s", grep(metrics, "eventshop_inventory_cas_conflicts_total"))
}

// TestMultiSKUConcurrencyConserves: orders overlapping on two SKUs are
// reserved, then confirmed or cancelled, all concurrently; both SKUs stay
// conserved and their counts match the reservation records.
func TestMultiSKUConcurrencyConserves(t *testing.T) {
	t.Parallel()
	const perSKU = 15
	h := start(t)
	h.setStock("A", "Alpha", 100, "USD", perSKU)
	h.setStock("B", "Beta", 250, "USD", perSKU)

	all := map[string][]events.Item{}
	for i := range 40 {
		id := fmt.Sprintf("m-%02d", i)
		switch i % 3 {
		case 0:
			all[id] = items("A", 1, "B", 1)
		case 1:
			all[id] = items("A", 2)
		default:
			all[id] = items("B", 1, "A", 1, "B", 1) // B twice: merged into one line of 2
		}
	}
	h.publishAll(all)
	h.waitDecided(len(all))
	h.settled()
	check := func(stage string) (confirmed []string, held map[string]int64) {
		held = map[string]int64{}
		sold := map[string]int64{}
		for id := range all {
			r, err := h.reservation(id)
			if err != nil {
				t.Fatalf("%s: %s: %v", stage, id, err)
			}
			for _, l := range r.Lines {
				switch r.Status {
				case stock.StatusReserved:
					held[l.SKU] += l.Quantity
				case stock.StatusCommitted:
					sold[l.SKU] += l.Quantity
				}
			}
			if r.Status == stock.StatusReserved {
				confirmed = append(confirmed, id)
			}
		}
		for _, sku := range []string{"A", "B"} {
			it := h.item(sku)
			if it.Total() != perSKU || it.Available < 0 || it.Reserved != held[sku] || it.Sold != sold[sku] {
				t.Fatalf("%s: %s = %+v; records hold %d, sold %d; want total %d", stage, sku, it, held[sku], sold[sku], perSKU)
			}
		}
		return confirmed, held
	}
	reservedIDs, held := check("after reserve")
	if len(reservedIDs) == 0 || held["A"] == 0 {
		t.Fatalf("nothing reserved: %v", held)
	}
	// Settle every reservation: alternate confirm and cancel, concurrently.
	var wg sync.WaitGroup
	for i, id := range reservedIDs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				r, err := h.reservation(id)
				if err != nil {
					t.Errorf("%s: %v", id, err)
					return
				}
				h.confirmed(id, r.TotalCents, r.Currency)
				return
			}
			h.cancelled(id, events.ReasonPaymentDeclined)
		}()
	}
	wg.Wait()
	h.eventually("every reservation settled", func() (bool, string) {
		c, r := h.count("inventory.*.committed"), h.count("inventory.*.released")
		return c+r == len(reservedIDs), fmt.Sprintf("%d committed + %d released of %d", c, r, len(reservedIDs))
	})
	h.settled()
	if left, _ := check("after settle"); len(left) != 0 {
		t.Fatalf("still reserved: %s", strings.Join(left, ","))
	}
	for _, sku := range []string{"A", "B"} {
		if it := h.item(sku); it.Reserved != 0 {
			t.Fatalf("%s = %+v, want nothing reserved", sku, it)
		}
	}
}
