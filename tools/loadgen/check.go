package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/api"
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
//   - the audit chain verifies and holds every event of every stream once
//     (a duplicate copy of an event is the same event), and nothing else.
func (r *Runner) check(ctx context.Context, nc *nats.Conn) []string {
	if nc != nil {
		r.quiesce(ctx, nc, r.cfg.SettleTimeout)
	}
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
	for id := range r.conflicts {
		fail("order %s has both a confirmed and a cancelled event", id)
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
	r.eventually(ctx, r.patience(1), func() []string {
		var out []string
		for _, sku := range r.skus {
			var s api.StockItem
			code, err := r.do(ctx, http.MethodGet, r.cfg.InventoryURL+"/inventory/"+sku, nil, nil, &s)
			if err != nil || code != http.StatusOK {
				out = append(out, fmt.Sprintf("GET /inventory/%s = %d %v", sku, code, err))
				continue
			}
			if s.Available < 0 || s.Reserved < 0 || s.Sold > r.cfg.StockPerSKU {
				// The sum below holds even when more was sold than stocked.
				out = append(out, fmt.Sprintf("SKU %s oversold: available %d, reserved %d, sold %d of an initial %d", sku, s.Available, s.Reserved, s.Sold, r.cfg.StockPerSKU))
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
		r.eventually(ctx, r.patience(1), func() []string {
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
				code, err := r.do(ctx, http.MethodGet, r.cfg.GatewayURL+"/charges?order_id="+p.id, nil,
					map[string]string{"Authorization": "Bearer " + r.cfg.AdminToken}, &c)
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
		r.eventually(ctx, r.patience(1), func() []string {
			var out []string
			var omu sync.Mutex
			r.parallel(orders, func(p *placed) {
				if _, ok := finals[p.id]; !ok {
					return
				}
				var n api.NotificationList
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
		r.eventually(ctx, r.patience(2), func() []string { return r.checkAudit(ctx, nc) }, fail)
	}
	return v
}

// checkAudit verifies the chain and, when NATS is reachable, that it holds
// every event of the domain streams exactly once and nothing else. The
// streams may hold an event more than once (a copy republished under
// another message id): the chain holds it once. Poison the audit
// dead-lettered is in the streams but never audited.
func (r *Runner) checkAudit(ctx context.Context, nc *nats.Conn) []string {
	var a api.Verification
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
	poison, err := auditDeadLettered(ctx, js)
	if err != nil {
		return []string{err.Error()}
	}
	want := map[string]string{} // event id -> where it was first seen
	var out []string
	for _, name := range domainStreams {
		err := readStream(ctx, js, name, func(seq uint64, subject string, data []byte) {
			if poison[name][seq] {
				return
			}
			var e struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(data, &e) != nil || e.ID == "" {
				out = append(out, fmt.Sprintf("%s seq %d (%s) is not an event, yet the audit did not dead-letter it", name, seq, subject))
				return
			}
			if _, ok := want[e.ID]; !ok {
				want[e.ID] = fmt.Sprintf("%s seq %d (%s)", name, seq, subject)
			}
		})
		if err != nil {
			return []string{err.Error()}
		}
	}
	if a.Entries < len(want) {
		return append(out, fmt.Sprintf("audit holds %d entries; the streams hold %d distinct events", a.Entries, len(want)))
	}
	audited, entries, err := AuditedEvents(ctx, js)
	if err != nil {
		return []string{err.Error()}
	}
	for id, n := range audited {
		switch {
		case n != 1:
			out = append(out, fmt.Sprintf("audit holds event %s %d times", id, n))
		case want[id] == "":
			out = append(out, fmt.Sprintf("audit holds event %s, which no domain stream holds", id))
		}
	}
	for id, where := range want {
		if audited[id] == 0 {
			out = append(out, fmt.Sprintf("event %s at %s is not in the audit chain", id, where))
		}
	}
	if a.Entries != entries {
		out = append(out, fmt.Sprintf("audit verify counts %d entries, the AUDIT stream's blocks hold %d", a.Entries, entries))
	}
	sort.Strings(out)
	return out
}

var domainStreams = []string{"ORDERS", "INVENTORY", "PAYMENTS", "NOTIFICATIONS"}

// AuditedEvents reads the whole AUDIT stream and returns how many entries
// of its blocks audit each event id, and the number of entries. The audit
// stores one block per group commit on audit.blocks, its entries in
// "entries"; a message that is not a block holds no entry here (the
// service's verification reports it).
func AuditedEvents(ctx context.Context, js jetstream.JetStream) (map[string]int, int, error) {
	audited := map[string]int{}
	entries := 0
	err := readAudit(ctx, js, func(e auditEntry) {
		audited[e.EventID]++
		entries++
	})
	if err != nil {
		return nil, 0, err
	}
	return audited, entries, nil
}

// auditEntry is what the checks read of an entry of an audit block.
type auditEntry struct {
	EventID string          `json:"event_id"`
	Event   json.RawMessage `json:"event"` // the audited event as published (secrets fingerprinted)
}

// readAudit calls f for every entry of the AUDIT stream's blocks, in
// chain order; a message that is not a block holds no entry here.
func readAudit(ctx context.Context, js jetstream.JetStream, f func(auditEntry)) error {
	return readStream(ctx, js, "AUDIT", func(_ uint64, _ string, data []byte) {
		var b struct {
			Entries []auditEntry `json:"entries"`
		}
		if json.Unmarshal(data, &b) != nil {
			return
		}
		for _, e := range b.Entries {
			f(e)
		}
	})
}

// readStream calls f for every message stored in the stream, in order.
func readStream(ctx context.Context, js jetstream.JetStream, name string, f func(seq uint64, subject string, data []byte)) error {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	last := s.CachedInfo().State.LastSeq
	if s.CachedInfo().State.Msgs == 0 {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	var seq uint64
	for seq < last {
		// No more than is left: a fetch for more waits out its MaxWait.
		batch, err := c.Fetch(int(min(1000, last-seq)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
			seq = meta.Sequence.Stream
			f(seq, m.Subject(), m.Data())
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("read %s: %w", name, err)
		}
		if n == 0 {
			return nil // the tail was deleted
		}
	}
	return nil
}

// auditDeadLettered returns, by stream, the sequences of the messages an
// audit consumer dead-lettered.
func auditDeadLettered(ctx context.Context, js jetstream.JetStream) (map[string]map[uint64]bool, error) {
	out := map[string]map[uint64]bool{}
	s, err := js.Stream(ctx, "DLQ")
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream DLQ: %w", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("dlq.>"))
	if err != nil {
		return nil, fmt.Errorf("stream DLQ info: %w", err)
	}
	for subj := range info.State.Subjects {
		t := strings.Split(subj, ".") // dlq.<durable>.<stream>.<seq>
		if len(t) != 4 || !strings.HasPrefix(t[1], "audit-") {
			continue
		}
		seq, err := strconv.ParseUint(t[3], 10, 64)
		if err != nil {
			continue
		}
		if out[t[2]] == nil {
			out[t[2]] = map[uint64]bool{}
		}
		out[t[2]][seq] = true
	}
	return out, nil
}

// quiesce waits until no durable consumer of a domain stream has a message
// pending or unacknowledged: a final event is not the end of an order's
// work (stock is committed or released, the customer notified, a late
// charge refunded, everything audited after it), and after an outage the
// consumers may have a long backlog to drain. It gives up after timeout
// (or if it may not list the consumers) and the checks say what is left.
func (r *Runner) quiesce(ctx context.Context, nc *nats.Conn, timeout time.Duration) {
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	start := time.Now()
	for {
		busy, err := busyConsumers(ctx, js)
		if err != nil {
			fmt.Fprintf(r.out, "loadgen: cannot watch the consumers drain (%v); checking now\n", err)
			return
		}
		if len(busy) == 0 {
			fmt.Fprintf(r.out, "loadgen: every consumer drained %s after the load\n", time.Since(start).Round(100*time.Millisecond))
			return
		}
		if time.Since(start) > timeout || ctx.Err() != nil {
			fmt.Fprintf(r.out, "loadgen: consumers still busy after %s: %s; checking now\n", timeout, strings.Join(busy, ", "))
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// busyConsumers returns the durables of the domain streams that have work
// left, with how much.
func busyConsumers(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	var busy []string
	for _, name := range domainStreams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", name, err)
		}
		l := s.ListConsumers(ctx)
		for ci := range l.Info() {
			if ci.Config.Durable != "" && (ci.NumPending > 0 || ci.NumAckPending > 0) {
				busy = append(busy, fmt.Sprintf("%s (%d pending, %d unacknowledged)", ci.Name, ci.NumPending, ci.NumAckPending))
			}
		}
		if err := l.Err(); err != nil {
			return nil, fmt.Errorf("consumers of %s: %w", name, err)
		}
	}
	return busy, nil
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

// patience returns how long a check waits for the system to settle: n
// times Config.CheckPatience, 30s by default.
func (r *Runner) patience(n time.Duration) time.Duration {
	if r.cfg.CheckPatience > 0 {
		return n * r.cfg.CheckPatience
	}
	return n * 30 * time.Second
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
