package events_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/zap"

	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/runner"
	"github.com/eventshop/shared/platform/tracing"
)

// discard is an exporter that drops what it is given: the cost measured is
// the services' (record, batch, encode nothing), not a collector's.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// BenchmarkPublishConsume publishes events, each from a new root span (a
// request), and consumes them with the runner, pipelined 64 deep, with
// tracing off (never sampled: ids only, as with no endpoint), sampling
// 100 % and 10 % (spans recorded and batched to an exporter that drops
// them), and without any span at all (the cost before tracing). Run:
//
//	go test -run '^$' -bench PublishConsume -benchtime 5000x ./events/
func BenchmarkPublishConsume(b *testing.B) {
	off, err := tracing.NewProvider(tracing.Config{}, "bench")
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []struct {
		name string
		tp   trace.TracerProvider
	}{
		{"no-spans", noop.NewTracerProvider()},
		{"off", off.TracerProvider()},
		{"sampled-100", sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))},
		{"sampled-10", sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1))))},
	} {
		b.Run(mode.name, func(b *testing.B) { benchPublishConsume(b, mode.tp) })
	}
}

func benchPublishConsume(b *testing.B, tp trace.TracerProvider) {
	srv := natstest.Start(b)
	_, js := natstest.Connect(b, srv)
	ctx := context.Background()
	if _, err := events.EnsureStream(ctx, js, events.StreamOrders, events.StreamOptions{}); err != nil {
		b.Fatal(err)
	}
	pub, err := events.NewPublisher(js, "order-service", events.WithTracerProvider(tp))
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{}, 1024)
	m := runner.NewMetrics(prometheus.NewRegistry())
	r, err := runner.New(js, runner.Config{Stream: events.StreamOrders, Durable: "bench",
		FilterSubjects: []string{events.FilterSubject(events.OrderConfirmed)}},
		func(context.Context, jetstream.Msg) error { done <- struct{}{}; return nil },
		zap.NewNop(), runner.WithMetrics(m), runner.WithTracerProvider(tp))
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Drain(dctx); err != nil {
			b.Error(err)
		}
	}()
	tracer := tp.Tracer("bench")
	const depth = 64
	sem := make(chan struct{}, depth)
	errs := make(chan error, 1)
	prefix := fmt.Sprintf("b%d-", time.Now().UnixNano())
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range b.N {
			<-done
			<-sem
		}
		close(errs)
	}()
	for i := range b.N {
		sem <- struct{}{}
		id := prefix + strconv.Itoa(i)
		rctx, root := tracer.Start(ctx, "POST /orders", trace.WithSpanKind(trace.SpanKindServer))
		go func() {
			defer root.End()
			if _, err := pub.Publish(rctx, events.OrderConfirmed, id, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
				events.OrderConfirmedData{OrderID: id, CustomerID: "c-1", TotalCents: 100, Currency: "USD"}); err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		}()
	}
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
}
