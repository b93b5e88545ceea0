package kit

import (
	"context"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/runner"
)

// deadLetters are a service's dead-letter parts. They are built here, where
// the runner and the deadletter package meet, because the capture is a
// runner and the runner writes letters: deadletter imports neither.
type deadLetters struct {
	// letters manages the letters of the service's stream; its Watch runs
	// as a background job to keep the eventshop_dead_letters gauge fresh.
	letters *deadletter.Letters
	// capture turns advisories about the service's consumers into letters
	// (nil if the service runs no consumer); it starts before them.
	capture *runner.Capture
	admin   *deadletter.Admin
}

// newDeadLetters builds the dead-letter parts of service, which manages
// the letters of stream's messages and captures the advisories about
// runners, and registers their metrics with reg; cm is the service's
// consumer metrics (letters written from advisories count in
// eventshop_dead_letters_total like the runners').
func newDeadLetters(js jetstream.JetStream, service, stream string, runners []*runner.Runner, replicas int,
	log *zap.Logger, reg prometheus.Registerer, cm *runner.Metrics) (*deadLetters, error) {
	letters, err := deadletter.NewLetters(js, stream, log, deadletter.WithMetrics(deadletter.NewMetrics(reg)))
	if err != nil {
		return nil, err
	}
	d := &deadLetters{letters: letters, admin: deadletter.NewAdmin(letters, log)}
	if len(runners) == 0 {
		return d, nil
	}
	d.capture, err = runner.NewCapture(js, runner.CaptureConfig{Service: service, Consumers: runners, Replicas: replicas},
		log, runner.WithMetrics(cm))
	if err != nil {
		return nil, err
	}
	return d, nil
}

// register mounts the dead-letter admin endpoints on r under /admin/dlq,
// behind the admin token.
func (d *deadLetters) register(r gin.IRouter, adminToken string) {
	d.admin.Register(r.Group("/admin", httpserver.BearerAuth(adminToken)))
}

// ready reports whether advisories are being captured.
func (d *deadLetters) ready(context.Context) error {
	if d.capture == nil {
		return nil
	}
	return d.capture.Ready()
}
