package service_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventshop/order-service/internal/config"
	"github.com/eventshop/order-service/internal/consumer"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
)

// sample reads name{labels} from the service's /metrics ("k", "v", ...: every
// one of these labels, and maybe others), or an error saying why not.
func (h *harness) sample(name string, labels ...string) (float64, error) {
	h.t.Helper()
	status, _, body := h.do(http.MethodGet, "/metrics", nil, nil)
	if status != http.StatusOK {
		return 0, fmt.Errorf("/metrics = %d", status)
	}
next:
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(line, fmt.Sprintf("%s=%q", labels[i], labels[i+1])) {
				continue next
			}
		}
		return strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
	}
	return 0, fmt.Errorf("no sample %s%v", name, labels)
}

// waitSample waits until name{labels} satisfies ok, and returns it.
func (h *harness) waitSample(what string, ok func(float64) bool, name string, labels ...string) float64 {
	h.t.Helper()
	var v float64
	natstest.EventuallyNil(h.t, what, func() error {
		var err error
		if v, err = h.sample(name, labels...); err != nil {
			return err
		}
		if !ok(v) {
			return fmt.Errorf("%s%v = %v", name, labels, v)
		}
		return nil
	})
	return v
}

// TestOrderMetrics: the order service exports what the alert rules read
// (deployments/observability/rules/alerts.yml): ORDER_DEADLINE; the age of
// the oldest order not final, which grows while an order waits and falls
// back to 0 once the deadline consumer has seen it final; and the time to
// each decision, by outcome and reason, counted once per order whatever
// is redelivered.
func TestOrderMetrics(t *testing.T) {
	const deadline = 3 * time.Second
	h := start(t, withDeadline(deadline), func(c *config.Config) { c.BrokerMetricsInterval = 50 * time.Millisecond })
	if v, err := h.sample("eventshop_order_deadline_seconds"); err != nil || v != deadline.Seconds() {
		t.Fatalf("eventshop_order_deadline_seconds = %v, %v, want %v", v, err, deadline.Seconds())
	}
	zero := func(v float64) bool { return v == 0 }
	h.waitSample("nothing open", zero, "eventshop_order_oldest_open_age_seconds")

	// Nobody answers the order yet: its age grows.
	id := h.create(validBody)
	created := h.lastSeq(events.StreamOrders)
	first := h.waitSample("an open order", func(v float64) bool { return v > 0.2 }, "eventshop_order_oldest_open_age_seconds")
	h.waitSample("its age growing", func(v float64) bool { return v > first+0.1 }, "eventshop_order_oldest_open_age_seconds")

	// Confirmed in time: observed once; back to 0 once the deadline
	// consumer has looked at it and acknowledged it.
	h.reserve(id)
	h.paid(id)
	h.waitStatus(id, "CONFIRMED")
	confirmed := []string{"outcome", "confirmed", "reason", ""}
	h.waitSample("one confirmation", func(v float64) bool { return v == 1 }, "eventshop_order_final_seconds_count", confirmed...)
	if sum, err := h.sample("eventshop_order_final_seconds_sum", confirmed...); err != nil || sum <= first || sum >= deadline.Seconds() {
		t.Errorf("time to confirm = %v s (%v), want between the %v s it waited and the deadline", sum, err, first)
	}
	h.waitAcked(events.StreamOrders, consumer.DeadlinesDurable, created)
	h.waitSample("nothing open once it is final", zero, "eventshop_order_oldest_open_age_seconds")

	// The payment again (a lost ack): nothing is decided, nothing counted.
	h.redeliver(events.StreamPayments, consumer.PaymentsDurable, "payments."+id+".succeeded")
	if v, err := h.sample("eventshop_order_final_seconds_count", confirmed...); err != nil || v != 1 {
		t.Errorf("after a redelivered payment: %v confirmations counted (%v), want still 1", v, err)
	}

	// An order nobody answers is cancelled at its deadline: counted under
	// reason timeout, as the OrdersTimingOut alert reads it.
	late := h.create(validBody)
	h.wantTimedOut(late)
	h.waitSample("one timeout", func(v float64) bool { return v == 1 }, "eventshop_order_final_seconds_count",
		"outcome", "cancelled", "reason", "timeout")
	h.waitSample("nothing open once it is cancelled", zero, "eventshop_order_oldest_open_age_seconds")
	if v, err := h.sample("eventshop_order_final_seconds_count", confirmed...); err != nil || v != 1 {
		t.Errorf("%v confirmations counted (%v), want 1", v, err)
	}
}
