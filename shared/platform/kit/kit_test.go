package kit_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/kit"
	"github.com/eventshop/shared/platform/kit/kittest"
	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/problem"
	"github.com/eventshop/shared/platform/runner"
)

const adminToken = "admin-secret"

// echo is a small service declared on the kit: it owns the stream ECHO,
// consumes it, serves GET /echo/count and runs one background job.
type echo struct {
	*kit.Service
	handled atomic.Int64
	// jobDone is set by the job once its context has ended.
	jobDone atomic.Bool
}

func newEcho(ctx context.Context, b *kittest.Broker) (*echo, error) {
	base := b.Base()
	base.AdminToken = adminToken
	base.BrokerMetricsInterval = 50 * time.Millisecond
	base.SetDefaults("127.0.0.1:0")
	e := &echo{}
	var setups prometheus.Counter
	svc, err := kit.New(ctx, kit.Config{
		Name: "echo-service", Base: base, Log: zap.NewNop(),
		Streams: []string{"ECHO"},
		EnsureStream: func(ctx context.Context, js jetstream.JetStream, name string, replicas int) error {
			_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"echo.>"}, Replicas: replicas})
			return err
		},
		Metrics: func(reg prometheus.Registerer) {
			setups = promauto.With(reg).NewCounter(prometheus.CounterOpts{Name: "echo_setups_total", Help: "Set-ups done."})
		},
		Setup: func(ctx context.Context, js jetstream.JetStream) error {
			if _, err := js.Stream(ctx, "ECHO"); err != nil { // made before Setup
				return err
			}
			setups.Inc()
			return nil
		},
		DeadLetters: "ECHO",
	}, func(p *kit.Platform) (kit.Wiring, error) {
		return kit.Wiring{
			Consumers: []kit.Consumer{{
				Config: runner.Config{Stream: "ECHO", Durable: "echo-worker", Concurrency: 2},
				Handle: func(context.Context, jetstream.Msg) error { e.handled.Add(1); return nil },
			}},
			Routes: func(r *gin.Engine) {
				r.GET("/echo/count", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"handled": e.handled.Load()}) })
			},
			MapError:  func(error) problem.Problem { return problem.Internal() },
			ReadyInfo: map[string]func() string{"mood": func() string { return "fine" }},
			Jobs: []func(context.Context) error{func(ctx context.Context) error {
				<-ctx.Done()
				time.Sleep(20 * time.Millisecond) // still busy after its context ended
				e.jobDone.Store(true)
				return nil
			}},
		}, nil
	})
	if err != nil {
		return nil, err
	}
	e.Service = svc
	return e, nil
}

// TestServiceDeclaredOnTheKit runs a declared service: it consumes its
// stream, serves its routes, the kit's readiness checks, metrics and
// dead-letter admin routes, and its background job is joined when it stops.
func TestServiceDeclaredOnTheKit(t *testing.T) {
	b := kittest.StartBroker(t)
	in := kittest.Start(t, func(ctx context.Context) (*echo, error) { return newEcho(ctx, b) })

	for range 3 {
		if _, err := b.JS.Publish(context.Background(), "echo.1", []byte("hi")); err != nil {
			t.Fatal(err)
		}
	}
	natstest.Eventually(t, "3 messages handled", func() bool { return in.Service.handled.Load() == 3 })
	if status, _, body := in.Get("/echo/count"); status != http.StatusOK || !strings.Contains(string(body), `"handled":3`) {
		t.Fatalf("GET /echo/count = %d %s", status, body)
	}

	status, _, body := in.Get("/ready")
	var ready struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
		Info   map[string]string `json:"info"`
	}
	if err := json.Unmarshal(body, &ready); err != nil || status != http.StatusOK || !ready.Ready {
		t.Fatalf("GET /ready = %d %s (%v)", status, body, err)
	}
	for _, check := range []string{"nats", "consumer:echo-worker", "dlq-capture"} {
		if ready.Checks[check] != "ok" {
			t.Errorf("/ready check %q = %q, want ok (%s)", check, ready.Checks[check], body)
		}
	}
	if ready.Info["mood"] != "fine" {
		t.Errorf("/ready info = %v, want mood fine", ready.Info)
	}

	natstest.EventuallyNil(t, "broker metrics", func() error {
		_, _, body := in.Get("/metrics")
		for _, want := range []string{
			`eventshop_consumer_messages_total{consumer="echo-worker",outcome="ack",service="echo-service"} 3`,
			`eventshop_stream_messages{service="echo-service",stream="ECHO"} 3`,
			`eventshop_consumer_pending_messages{consumer="echo-worker",service="echo-service",stream="ECHO"} 0`,
			`echo_setups_total{service="echo-service"} 1`,
		} {
			if !strings.Contains(string(body), want) {
				return errors.New("no " + want)
			}
		}
		return nil
	})
	if status, _, body := in.Get("/admin/dlq", kittest.Bearer(adminToken)...); status != http.StatusOK {
		t.Fatalf("GET /admin/dlq = %d %s", status, body)
	}
	if status, _, _ := in.Get("/admin/dlq"); status != http.StatusUnauthorized {
		t.Fatalf("GET /admin/dlq without the token = %d, want 401", status)
	}

	in.Stop()
	if !in.Service.jobDone.Load() {
		t.Fatal("Run returned before its background job did")
	}
}

// TestNewRefusesWhatCannotWork: a declaration without what the kit needs
// is refused before connecting, and a failing set-up is returned once
// SetupRetry gives up.
func TestNewRefusesWhatCannotWork(t *testing.T) {
	b := kittest.StartBroker(t)
	base := b.Base()
	base.SetDefaults("127.0.0.1:0")
	noWiring := func(*kit.Platform) (kit.Wiring, error) { return kit.Wiring{}, nil }
	refused := errors.New("refused")
	tests := []struct {
		name    string
		cfg     kit.Config
		wantErr error
	}{
		{name: "no name", cfg: kit.Config{Base: base, Log: zap.NewNop(), DeadLetters: "X"}, wantErr: kit.ErrInvalidConfig},
		{name: "no dead letters", cfg: kit.Config{Name: "x", Base: base, Log: zap.NewNop()}, wantErr: kit.ErrInvalidConfig},
		{name: "streams without EnsureStream", cfg: kit.Config{Name: "x", Base: base, Log: zap.NewNop(), DeadLetters: "X", Streams: []string{"X"}},
			wantErr: kit.ErrInvalidConfig},
		{name: "no routes", cfg: kit.Config{Name: "x", Base: base, Log: zap.NewNop(), DeadLetters: "X"}, wantErr: kit.ErrInvalidConfig},
		{name: "set-up fails", cfg: kit.Config{Name: "x", Base: base, Log: zap.NewNop(), DeadLetters: "X",
			Setup:      func(context.Context, jetstream.JetStream) error { return refused },
			SetupRetry: []natsconn.EnsureOption{natsconn.WithGiveUpAfter(time.Millisecond)}}, wantErr: refused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := kit.New(context.Background(), tt.cfg, noWiring); !errors.Is(err, tt.wantErr) {
				t.Fatalf("New = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
