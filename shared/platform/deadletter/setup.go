package deadletter

import (
	"context"
	"fmt"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/runner"
)

// Config is what a service tells Setup.
type Config struct {
	// Service is the service name (the capture stream is named after it).
	Service string
	// Stream is the stream the service owns: it manages the dead letters
	// of that stream's messages, whoever gave up on them.
	Stream string
	// Consumers are the service's runners, whose advisories it captures.
	Consumers []*runner.Runner
	// Replicas of the capture stream.
	Replicas int
}

// Kit is a service's dead-letter parts.
type Kit struct {
	// Letters manages the letters of the service's stream; run its Watch
	// as a background job to keep the eventshop_dead_letters gauge fresh.
	Letters *Letters
	// Capture turns advisories about the service's consumers into letters
	// (nil if the service runs no consumer); start it before them.
	Capture *Capture
	admin   *Admin
}

// Setup builds a service's dead-letter parts and registers their metrics
// with reg; cm is the service's consumer metrics (letters written from
// advisories count in eventshop_dead_letters_total like the runner's).
func Setup(js jetstream.JetStream, cfg Config, log *zap.Logger, reg prometheus.Registerer, cm *runner.Metrics, opts ...Option) (*Kit, error) {
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("dead-letter metrics: %w", err)
	}
	opts = append([]Option{WithMetrics(m)}, opts...)
	letters, err := NewLetters(js, cfg.Stream, log, opts...)
	if err != nil {
		return nil, err
	}
	k := &Kit{Letters: letters, admin: NewAdmin(letters, log)}
	if len(cfg.Consumers) == 0 {
		return k, nil
	}
	sources := make([]Source, len(cfg.Consumers))
	for i, r := range cfg.Consumers {
		sources[i] = r
	}
	if cm != nil {
		opts = append(opts, WithConsumerMetrics(cm))
	}
	k.Capture, err = NewCapture(js, CaptureConfig{Service: cfg.Service, Consumers: sources, Replicas: cfg.Replicas}, log, opts...)
	if err != nil {
		return nil, err
	}
	return k, nil
}

// Register mounts the dead-letter admin endpoints on r under /admin/dlq,
// behind the admin token.
func (k *Kit) Register(r gin.IRouter, adminToken string) {
	k.admin.Register(r.Group("/admin", httpserver.BearerAuth(adminToken)))
}

// Ready reports whether advisories are being captured.
func (k *Kit) Ready(context.Context) error {
	if k.Capture == nil {
		return nil
	}
	return k.Capture.Ready()
}
