package service_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/eventshop/payment-service/internal/gatewaysim"
	"github.com/eventshop/shared/platform/natstest"
)

// metric reads one sample from the service's /metrics: the value of name
// whose labels include every pair of labels ("k", "v", ...).
func (h *harness) metric(name string, labels ...string) (float64, error) {
	status, body := h.get("/metrics")
	if status != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics = %d", status)
	}
next:
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(line, fmt.Sprintf("%s=%q", labels[i], labels[i+1])) {
				continue next
			}
		}
		return strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
	}
	return 0, fmt.Errorf("no sample %s%v in /metrics", name, labels)
}

// lag is payment-inventory's backlog as /metrics shows it: messages not
// delivered yet plus delivered and not acknowledged.
func (h *harness) lag() (pending, ackPending float64, err error) {
	l := []string{"stream", "INVENTORY", "consumer", "payment-inventory"}
	if pending, err = h.metric("eventshop_consumer_pending_messages", l...); err != nil {
		return 0, 0, err
	}
	ackPending, err = h.metric("eventshop_consumer_ack_pending_messages", l...)
	return pending, ackPending, err
}

// TestLagRisesWhileGatewayDownAndFallsAfter is issue 10's load-time check:
// with the gateway down, reserved orders pile up and payment-inventory's
// lag rises in /metrics; once the gateway is back, it falls to zero and
// every order is paid.
func TestLagRisesWhileGatewayDownAndFallsAfter(t *testing.T) {
	h := start(t)
	natstest.EventuallyNil(t, "lag exported at zero", func() error {
		p, a, err := h.lag()
		if err == nil && p+a != 0 {
			err = fmt.Errorf("pending %v, ack pending %v", p, a)
		}
		return err
	})

	h.setGatewayMode(gatewaysim.Settings{Mode: gatewaysim.ModeDown})
	const n = 25
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newOrderID("lag")
		h.placeOrder(ids[i], gatewaysim.TokenVisa, total)
	}
	// Nothing is acknowledged while the gateway is down: every reserved
	// order is either waiting on the server (pending: the consumer is
	// paused while the breaker is open) or delivered and waiting to retry
	// (ack pending).
	natstest.EventuallyNil(t, "payment-inventory lag at every order placed", func() error {
		p, a, err := h.lag()
		if err == nil && p+a != n {
			err = fmt.Errorf("pending %v + ack pending %v, want %d", p, a, n)
		}
		return err
	})
	natstest.EventuallyNil(t, "the pause visible in /metrics", func() error {
		v, err := h.metric("eventshop_consumer_paused", "consumer", "payment-inventory")
		if err == nil && v != 1 {
			err = fmt.Errorf("paused = %v", v)
		}
		return err
	})

	h.setGatewayMode(gatewaysim.Settings{Mode: gatewaysim.ModeHealthy})
	natstest.EventuallyNil(t, "payment-inventory lag back to zero", func() error {
		p, a, err := h.lag()
		if err == nil && p+a != 0 {
			err = fmt.Errorf("pending %v, ack pending %v", p, a)
		}
		return err
	})
	for _, id := range ids {
		h.paymentEvent(id, "succeeded")
	}
	if v, err := h.metric("eventshop_payment_process_duration_seconds_count", "outcome", "succeeded"); err != nil || v < n {
		t.Errorf("process duration count of succeeded payments = %v, %v; want >= %d", v, err, n)
	}
	if v, err := h.metric("eventshop_payment_process_duration_seconds_count", "outcome", "unavailable"); err != nil || v < 1 {
		t.Errorf("process duration count of payments that found the gateway down = %v, %v; want >= 1", v, err)
	}
	if v, err := h.metric("eventshop_stream_messages", "stream", "PAYMENTS"); err != nil || v < n {
		t.Errorf("PAYMENTS stream size = %v, %v; want at least the %d succeeded events", v, err, n)
	}
}
