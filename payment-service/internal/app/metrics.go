package app

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/eventshop/payment-service/internal/payment"
)

// metrics are the use cases' own: the time to pay one reserved order.
// The gateway's and the breaker's metrics are their adapters' (service).
type metrics struct {
	process *prometheus.HistogramVec
}

// newMetrics returns the metrics registered with reg (kept but not
// exported when reg is nil).
func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		process: promauto.With(reg).NewHistogramVec(prometheus.HistogramOpts{
			// The design's payment_process_duration_seconds, under the
			// eventshop_ prefix every metric here has.
			Name: "eventshop_payment_process_duration_seconds",
			Help: "Time to process one reserved order's payment (app.App.InventoryReserved: record, gateway call, " +
				"record, event), by outcome: succeeded, failed (declined), void (cancelled first), unavailable " +
				"(gateway down or breaker open: waits), rejected, no_token, refunded, error (a transient NATS failure).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
	}
}

// processed times one payment into
// eventshop_payment_process_duration_seconds.
func (m *metrics) processed(rec payment.Record, err error, took time.Duration) {
	m.process.WithLabelValues(processOutcome(rec, err)).Observe(took.Seconds())
}

// processOutcome names a payment's outcome with one of a few fixed labels.
func processOutcome(rec payment.Record, err error) string {
	switch {
	case err == nil && (rec.Status == payment.StatusSucceeded || rec.Status == payment.StatusFailed ||
		rec.Status == payment.StatusVoid || rec.Status == payment.StatusRefunded):
		return string(rec.Status)
	case err == nil:
		return "other"
	case errors.Is(err, payment.ErrGatewayUnavailable):
		return "unavailable"
	case errors.Is(err, payment.ErrGatewayRejected):
		return "rejected"
	case errors.Is(err, payment.ErrNoPaymentToken):
		return "no_token"
	default:
		return "error"
	}
}
