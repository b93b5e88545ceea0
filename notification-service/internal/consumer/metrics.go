package consumer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventshop/notification-service/internal/notification"
)

// Metrics count notification outcomes.
type Metrics struct {
	sentTotal   *prometheus.CounterVec
	failedTotal *prometheus.CounterVec
}

// NewMetrics registers the notification metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		sentTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_notifications_sent_total",
			Help: "Notifications a channel accepted, by kind and channel.",
		}, []string{"kind", "channel"}),
		failedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_notification_failures_total",
			Help: "Failed deliveries, by kind, channel and class (transient: retried; permanent: dead-lettered).",
		}, []string{"kind", "channel", "class"}),
	}
	for _, c := range []prometheus.Collector{m.sentTotal, m.failedTotal} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) sent(n notification.Notification) {
	if m == nil {
		return
	}
	m.sentTotal.WithLabelValues(string(n.Kind), n.Channel).Inc()
}

func (m *Metrics) failed(n notification.Notification, permanent bool) {
	if m == nil {
		return
	}
	class := "transient"
	if permanent {
		class = "permanent"
	}
	m.failedTotal.WithLabelValues(string(n.Kind), n.Channel, class).Inc()
}
