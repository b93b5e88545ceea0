package app

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventshop/notification-service/internal/notification"
)

// metrics count notification outcomes.
type metrics struct {
	sentTotal   *prometheus.CounterVec
	failedTotal *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		sentTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_notifications_sent_total",
			Help: "Notifications a channel accepted, by kind and channel.",
		}, []string{"kind", "channel"}),
		failedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_notification_failures_total",
			Help: "Failed deliveries, by kind, channel and class (transient: retried; permanent: dead-lettered).",
		}, []string{"kind", "channel", "class"}),
	}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.sentTotal, m.failedTotal} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("notification metrics: %w", err)
		}
	}
	return nil
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
