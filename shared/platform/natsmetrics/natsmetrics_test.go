package natsmetrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/metrics"
	"github.com/eventshop/shared/platform/natsmetrics"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/runner"
)

type durable struct{ stream, name string }

func (d durable) Stream() string { return d.stream }
func (d durable) Name() string   { return d.name }

// scrape reads one sample from the service's /metrics output: the value of
// name with every one of labels ("k", "v", ...), or an error saying why not.
func scrape(url, name string, labels ...string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return sample(string(body), name, labels...)
}

// sample finds name{labels} in a Prometheus text exposition.
func sample(text, name string, labels ...string) (float64, error) {
next:
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(line, fmt.Sprintf("%s=%q", labels[i], labels[i+1])) {
				continue next
			}
		}
		return strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
	}
	return 0, fmt.Errorf("no sample %s%v", name, labels)
}

func wantSample(t *testing.T, url string, want float64, name string, labels ...string) {
	t.Helper()
	natstest.EventuallyNil(t, fmt.Sprintf("%s%v = %v", name, labels, want), func() error {
		got, err := scrape(url, name, labels...)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("got %v", got)
		}
		return nil
	})
}

func TestCollectorReportsLagStreamSizeAndDeadLetters(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry("test")
	web := httptest.NewServer(metrics.Handler(reg))
	t.Cleanup(web.Close)
	url := web.URL + "/metrics"

	// A runner that refuses the poison message and handles the rest,
	// started only once the backlog is there.
	cm := runner.NewMetrics(metrics.Registerer(reg, "test"))
	runner, err := runner.New(js, runner.Config{Stream: "T", Durable: "lagging", FilterSubjects: []string{"t.>"}},
		func(_ context.Context, msg jetstream.Msg) error {
			if strings.HasSuffix(msg.Subject(), ".poison") {
				return runner.Permanent(errors.New("poison"))
			}
			return nil
		}, zap.NewNop(), runner.WithMetrics(cm))
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.CreateOrUpdateConsumer(ctx, runner.ConsumerConfig()); err != nil {
		t.Fatal(err)
	}
	dm := deadletter.NewMetrics(metrics.Registerer(reg, "test"))
	letters, err := deadletter.NewLetters(js, "T", zap.NewNop(), deadletter.WithMetrics(dm))
	if err != nil {
		t.Fatal(err)
	}

	c, err := natsmetrics.New(js, zap.NewNop(), metrics.Registerer(reg, "test"),
		natsmetrics.WithConsumers(runner), natsmetrics.WithStreams("T"), natsmetrics.WithInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Drain(context.Background()); err != nil {
			t.Error(err)
		}
	})

	const n = 7
	for i := range n {
		if _, err := js.Publish(ctx, fmt.Sprintf("t.%d.done", i), []byte("payload")); err != nil {
			t.Fatal(err)
		}
	}
	lag := []string{"stream", "T", "consumer", "lagging"}
	wantSample(t, url, n, "eventshop_consumer_pending_messages", lag...)
	wantSample(t, url, 0, "eventshop_consumer_ack_pending_messages", lag...)
	wantSample(t, url, n, "eventshop_stream_messages", "stream", "T")
	if b, err := scrape(url, "eventshop_stream_bytes", "stream", "T"); err != nil || b < n*float64(len("payload")) {
		t.Fatalf("eventshop_stream_bytes{stream=T} = %v, %v; want at least the payloads", b, err)
	}

	if err := runner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = runner.Drain(context.Background()) })
	wantSample(t, url, 0, "eventshop_consumer_pending_messages", lag...)
	wantSample(t, url, 0, "eventshop_consumer_ack_pending_messages", lag...)

	ack, err := js.Publish(ctx, "t.8.poison", []byte("{"))
	if err != nil {
		t.Fatal(err)
	}
	natstest.DeadLetter(t, js, "lagging", "T", ack.Sequence)
	if err := letters.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	wantSample(t, url, 1, "eventshop_dead_letters", "consumer", "lagging")
	wantSample(t, url, 0, "eventshop_consumer_pending_messages", lag...)
	wantSample(t, url, 0, "eventshop_consumer_ack_pending_messages", lag...)
	wantSample(t, url, n+1, "eventshop_stream_messages", "stream", "T")
	if got, err := scrape(url, "eventshop_broker_info_errors_total"); err == nil {
		t.Fatalf("info errors counted on a healthy broker: %v", got)
	}
}

func TestCollectorCountsFailuresAndStops(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	reg := metrics.NewRegistry("test")
	c, err := natsmetrics.New(js, zap.NewNop(), reg,
		natsmetrics.WithConsumers(durable{"MISSING", "nobody"}), natsmetrics.WithStreams("MISSING"),
		natsmetrics.WithInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Poll(context.Background()); got != 2 {
		t.Fatalf("Poll of a missing consumer and stream: %d failures, want 2", got)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start must not fail on a broker that cannot answer: %v", err)
	}
	web := httptest.NewServer(metrics.Handler(reg))
	t.Cleanup(web.Close)
	natstest.EventuallyNil(t, "failures counted", func() error {
		got, err := scrape(web.URL, "eventshop_broker_info_errors_total", "kind", "consumer", "name", "nobody")
		if err == nil && got < 3 {
			err = fmt.Errorf("got %v", got)
		}
		return err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	before, err := scrape(web.URL, "eventshop_broker_info_errors_total", "kind", "stream", "name", "MISSING")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // five intervals: a running loop would count more
	after, err := scrape(web.URL, "eventshop_broker_info_errors_total", "kind", "stream", "name", "MISSING")
	if err != nil || after != before {
		t.Fatalf("polling went on after Drain: %v -> %v (%v)", before, after, err)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	tests := []struct {
		name string
		opt  natsmetrics.Option
	}{
		{"zero interval", natsmetrics.WithInterval(0)},
		{"consumer without stream", natsmetrics.WithConsumers(durable{"", "d"})},
		{"empty stream", natsmetrics.WithStreams("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := natsmetrics.New(js, zap.NewNop(), metrics.NewRegistry("x"), tt.opt)
			if !errors.Is(err, natsmetrics.ErrInvalidOption) {
				t.Fatalf("err = %v, want ErrInvalidOption", err)
			}
		})
	}
}

// TestServiceUsersMayReadTheirLag runs the collector as each service's
// NATS user under the production permissions (deployments/nats/auth.conf):
// a missing CONSUMER.INFO or STREAM.INFO permission shows as a failure.
func TestServiceUsersMayReadTheirLag(t *testing.T) {
	s := natstest.StartAuth(t)
	_, admin := s.ConnectAs(t, "admin")
	ctx := context.Background()
	for _, name := range []string{"ORDERS", "INVENTORY", "PAYMENTS", "NOTIFICATIONS", "AUDIT"} {
		if _, err := admin.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name) + ".>"}}); err != nil {
			t.Fatal(err)
		}
	}
	services := []struct {
		user      string
		stream    string
		consumers []durable
	}{
		{"order-service", "ORDERS", []durable{{"INVENTORY", "order-inventory"}, {"PAYMENTS", "order-payments"}, {"ORDERS", "order-deadlines"}}},
		{"inventory-service", "INVENTORY", []durable{{"ORDERS", "inventory-orders"}}},
		{"payment-service", "PAYMENTS", []durable{{"INVENTORY", "payment-inventory"}, {"ORDERS", "payment-orders"}}},
		{"notification-service", "NOTIFICATIONS", []durable{{"ORDERS", "notification-orders"}}},
		{"audit-service", "AUDIT", []durable{{"ORDERS", "audit-orders"}, {"INVENTORY", "audit-inventory"},
			{"PAYMENTS", "audit-payments"}, {"NOTIFICATIONS", "audit-notifications"}}},
	}
	for _, svc := range services {
		var ds []natsmetrics.Durable
		for _, d := range svc.consumers {
			st, err := admin.Stream(ctx, d.stream)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: d.name, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
				t.Fatal(err)
			}
			ds = append(ds, d)
		}
		_, js := s.ConnectAs(t, svc.user)
		c, err := natsmetrics.New(js, zap.NewNop(), metrics.NewRegistry(svc.user),
			natsmetrics.WithConsumers(ds...), natsmetrics.WithStreams(svc.stream), natsmetrics.WithInterval(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if failed := c.Poll(ctx); failed != 0 {
			t.Errorf("%s: %d of its consumer and stream info requests refused", svc.user, failed)
		}
	}
}
