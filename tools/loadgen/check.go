package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// check verifies the business invariants through the public APIs and
// returns every violation found:
//   - every accepted order reached a final state, with the expected outcome
//     for unknown SKUs and declined cards;
//   - for every SKU: initial stock = available + reserved + sold, nothing is
//     left reserved, and sold = the quantities of the confirmed orders;
//   - every confirmed order has exactly one successful charge, not refunded,
//     and no cancelled order stays charged (each of its successful charges
//     was refunded);
//   - one notification per final transition;
//   - the audit chain verifies and holds every event of every stream once.
func (r *Runner) check(ctx context.Context, nc *nats.Conn) []string {
	var mu sync.Mutex
	var v []string
	fail := func(format string, args ...any) {
		mu.Lock()
		v = append(v, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	r.mu.Lock()
	orders := append([]*placed(nil), r.orders...)
	finals := make(map[string]final, len(r.finals))
	for k, f := range r.finals {
		finals[k] = f
	}
	r.mu.Unlock()

	sold := map[string]int64{}
	for _, p := range orders {
		f, ok := finals[p.id]
		switch {
		case !ok:
			fail("order %s never reached a final state", p.id)
			continue
		case (p.unknown || p.decline) && f.status != "CANCELLED":
			fail("order %s (unknown SKU %v, declined card %v) is %s, want CANCELLED", p.id, p.unknown, p.decline, f.status)
		}
		if f.status == "CONFIRMED" {
			for _, l := range p.lines {
				sold[l.SKU] += l.Quantity
			}
		}
	}

	// Stock settles shortly after the final events (commit/release follow them).
	r.eventually(ctx, 30*time.Second, func() []string {
		var out []string
		for _, sku := range r.skus {
			var s struct{ Available, Reserved, Sold int64 }
			code, err := r.do(ctx, http.MethodGet, r.cfg.InventoryURL+"/inventory/"+sku, nil, nil, &s)
			if err != nil || code != http.StatusOK {
				out = append(out, fmt.Sprintf("GET /inventory/%s = %d %v", sku, code, err))
				continue
			}
			if s.Available+s.Reserved+s.Sold != r.cfg.StockPerSKU {
				out = append(out, fmt.Sprintf("SKU %s: available %d + reserved %d + sold %d != initial %d", sku, s.Available, s.Reserved, s.Sold, r.cfg.StockPerSKU))
			}
			if s.Reserved != 0 {
				out = append(out, fmt.Sprintf("SKU %s: %d units still reserved after every order finished", sku, s.Reserved))
			}
			if s.Sold != sold[sku] {
				out = append(out, fmt.Sprintf("SKU %s: sold %d, confirmed orders hold %d", sku, s.Sold, sold[sku]))
			}
		}
		return out
	}, fail)

	// A cancelled order may have been charged (a payment that arrived after
	// its deadline); the refund follows the cancellation, so this settles
	// shortly after the final states too.
	if r.cfg.GatewayURL != "" {
		r.eventually(ctx, 30*time.Second, func() []string {
			var out []string
			var cmu sync.Mutex
			r.parallel(orders, func(p *placed) {
				f, ok := finals[p.id]
				if !ok {
					return
				}
				var c struct {
					Succeeded int `json:"succeeded"`
					Refunded  int `json:"refunded"`
				}
				var msg string
				code, err := r.do(ctx, http.MethodGet, r.cfg.GatewayURL+"/charges?order_id="+p.id, nil, nil, &c)
				switch {
				case err != nil || code != http.StatusOK:
					msg = fmt.Sprintf("GET /charges for %s = %d %v", p.id, code, err)
				case f.status == "CONFIRMED" && (c.Succeeded != 1 || c.Refunded != 0):
					msg = fmt.Sprintf("confirmed order %s has %d successful charges (%d refunded), want 1 kept", p.id, c.Succeeded, c.Refunded)
				case f.status == "CANCELLED" && c.Succeeded-c.Refunded != 0:
					msg = fmt.Sprintf("cancelled order %s stays charged (%d successful charges, %d refunded)", p.id, c.Succeeded, c.Refunded)
				}
				if msg != "" {
					cmu.Lock()
					out = append(out, msg)
					cmu.Unlock()
				}
			})
			return out
		}, fail)
	}

	if r.cfg.NotificationURL != "" {
		r.eventually(ctx, 30*time.Second, func() []string {
			var out []string
			var omu sync.Mutex
			r.parallel(orders, func(p *placed) {
				if _, ok := finals[p.id]; !ok {
					return
				}
				var n struct {
					Notifications []any `json:"notifications"`
				}
				code, err := r.do(ctx, http.MethodGet, r.cfg.NotificationURL+"/notifications?order_id="+p.id, nil, nil, &n)
				if err != nil || code != http.StatusOK || len(n.Notifications) != 1 {
					omu.Lock()
					out = append(out, fmt.Sprintf("order %s has %d notifications, want 1 (%d %v)", p.id, len(n.Notifications), code, err))
					omu.Unlock()
				}
			})
			return out
		}, fail)
	}

	if r.cfg.AuditURL != "" {
		r.eventually(ctx, 60*time.Second, func() []string { return r.checkAudit(ctx, nc) }, fail)
	}
	return v
}

// checkAudit verifies the chain and, when NATS is reachable, that it holds
// exactly as many entries as the domain streams hold events.
func (r *Runner) checkAudit(ctx context.Context, nc *nats.Conn) []string {
	var a struct {
		OK      bool   `json:"ok"`
		Entries uint64 `json:"entries"`
	}
	code, err := r.do(ctx, http.MethodGet, r.cfg.AuditURL+"/audit/verify", nil, nil, &a)
	if err != nil || code != http.StatusOK || !a.OK {
		return []string{fmt.Sprintf("audit verify = %d ok=%v %v", code, a.OK, err)}
	}
	if nc == nil {
		return nil
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return []string{err.Error()}
	}
	var total uint64
	for _, name := range []string{"ORDERS", "INVENTORY", "PAYMENTS", "NOTIFICATIONS"} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return []string{fmt.Sprintf("stream %s: %v", name, err)}
		}
		info, err := s.Info(ctx)
		if err != nil {
			return []string{fmt.Sprintf("stream %s info: %v", name, err)}
		}
		total += info.State.Msgs
	}
	// Poison messages sit in the streams too but are dead-lettered, not
	// audited: every other message must be in the chain exactly once.
	poison, err := AuditDeadLetters(ctx, js)
	if err != nil {
		return []string{err.Error()}
	}
	if a.Entries != total-poison {
		return []string{fmt.Sprintf("audit holds %d entries; the streams hold %d events, %d of them poison the audit dead-lettered", a.Entries, total, poison)}
	}
	return nil
}

// AuditDeadLetters counts the distinct messages the audit consumers
// dead-lettered (each dead letter's subject names one original message).
func AuditDeadLetters(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	s, err := js.Stream(ctx, "DLQ")
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("stream DLQ: %w", err)
	}
	// Wildcards match whole tokens only, so filter the durable names here.
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("dlq.>"))
	if err != nil {
		return 0, fmt.Errorf("stream DLQ info: %w", err)
	}
	var n uint64
	for subj := range info.State.Subjects {
		if strings.HasPrefix(subj, "dlq.audit-") {
			n++
		}
	}
	return n, nil
}

// eventually re-runs f until it finds nothing or the timeout passes, then
// reports what the last run found.
func (r *Runner) eventually(ctx context.Context, timeout time.Duration, f func() []string, fail func(string, ...any)) {
	deadline := time.Now().Add(timeout)
	for {
		found := f()
		if len(found) == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			for _, s := range found {
				fail("%s", s)
			}
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}
