package app

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/eventshop/notification-service/internal/notification"
)

// metrics count notification outcomes.
type metrics struct {
	sentTotal   *prometheus.CounterVec
	failedTotal *prometheus.CounterVec
}

// newMetrics returns the metrics registered with reg (kept but not
// exported when reg is nil).
func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		sentTotal: f.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_notifications_sent_total",
			Help: "Notifications a channel accepted, by kind and channel.",
		}, []string{"kind", "channel"}),
		failedTotal: f.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_notification_failures_total",
			Help: "Failed deliveries, by kind, channel and class (transient: retried; permanent: dead-lettered).",
		}, []string{"kind", "channel", "class"}),
	}
}

func (m *metrics) sent(n notification.Notification) {
	m.sentTotal.WithLabelValues(string(n.Kind), n.Channel).Inc()
}

func (m *metrics) failed(n notification.Notification, permanent bool) {
	class := "transient"
	if permanent {
		class = "permanent"
	}
	m.failedTotal.WithLabelValues(string(n.Kind), n.Channel, class).Inc()
}
