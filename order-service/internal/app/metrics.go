package app

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/eventshop/order-service/internal/order"
)

// Metrics observe the decisions the handlers store.
type Metrics struct {
	final *prometheus.HistogramVec
}

// Outcome labels of eventshop_order_final_seconds.
const (
	OutcomeConfirmed = "confirmed"
	OutcomeCancelled = "cancelled"
)

// reasons are the cancel reasons the reason label may hold: an order
// decided by a record of an earlier version could carry any text, and a
// label value must come from a fixed set.
var reasons = []string{order.ReasonUnknownSKU, order.ReasonInsufficientStock, order.ReasonCurrencyMismatch,
	order.ReasonPaymentDeclined, order.ReasonTimeout}

// reasonOther stands for a cancel reason outside reasons.
const reasonOther = "other"

// NewMetrics registers eventshop_order_final_seconds{outcome,reason} with
// reg: from an order's created_at to the decision that made it CONFIRMED or
// CANCELLED, observed once per order, by the decider whose final event the
// stream stored. Its _count is orders decided per outcome and reason.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{final: promauto.With(reg).NewHistogramVec(prometheus.HistogramOpts{
		Name: "eventshop_order_final_seconds",
		Help: "Time from an order's created_at (POST /orders) to its decision, CONFIRMED or CANCELLED, observed once " +
			"per order when its final event is stored; reason is the cancel reason (\"\" when confirmed).",
		// The saga takes milliseconds; a deadline cancels at ORDER_DEADLINE
		// (2 minutes by default) plus up to 10 s.
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 180, 300, 600},
	}, []string{"outcome", "reason"})}
	// Export zeros, so rates and increases work from the first decision.
	m.final.WithLabelValues(OutcomeConfirmed, "")
	for _, r := range reasons {
		m.final.WithLabelValues(OutcomeCancelled, r)
	}
	return m
}

// decided observes o, whose final event was just stored: it took from its
// created_at to its updated_at, the time of the transition that decided
// it (or of the earlier version's record that did).
func (m *Metrics) decided(o order.Order) {
	if m == nil {
		return
	}
	outcome, reason := OutcomeConfirmed, ""
	if o.Status == order.StatusCancelled {
		outcome, reason = OutcomeCancelled, reasonOther
		if slices.Contains(reasons, o.CancelReason) {
			reason = o.CancelReason
		}
	}
	m.final.WithLabelValues(outcome, reason).Observe(max(o.UpdatedAt.Sub(o.CreatedAt).Seconds(), 0))
}
