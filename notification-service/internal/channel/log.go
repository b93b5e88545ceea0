// Package channel holds the ways a notification reaches the customer: a log
// line (the default, for development and demos) and a signed webhook.
package channel

import (
	"context"

	"go.uber.org/zap"

	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/shared/platform/logging"
)

// Log "delivers" a notification as one structured log line.
type Log struct {
	log *zap.Logger
}

// NewLog returns a channel that writes notifications to log.
func NewLog(log *zap.Logger) *Log { return &Log{log: log.Named("notify")} }

// Send writes n as one info line; it cannot fail.
func (l *Log) Send(_ context.Context, n notification.Notification) error {
	fields := append(logging.Order(n.OrderID, n.TraceID),
		zap.String("notification_id", n.ID),
		zap.String("kind", string(n.Kind)),
		zap.String("customer_id", n.Payload.CustomerID),
		zap.Int("attempt", n.Attempts),
	)
	if n.Payload.TotalCents != nil {
		fields = append(fields, zap.Int64("total_cents", *n.Payload.TotalCents), zap.String("currency", n.Payload.Currency))
	}
	if n.Payload.Reason != "" {
		fields = append(fields, zap.String("reason", n.Payload.Reason), zap.String("detail", n.Payload.Detail))
	}
	l.log.Info("notification", fields...)
	return nil
}
