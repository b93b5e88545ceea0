package tracing_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventshop/shared/platform/tracing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		env           map[string]string
		wantEndpoint  string
		wantExporting bool
	}{
		{name: "nothing set", env: nil},
		{name: "base endpoint gets the traces path", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/"},
			wantEndpoint: "http://127.0.0.1:4318/v1/traces", wantExporting: true},
		{name: "traces endpoint is used as given and wins", env: map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/custom"},
			wantEndpoint: "http://b:4318/custom", wantExporting: true},
		{name: "sdk disabled", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_SDK_DISABLED": "true"},
			wantEndpoint: "http://a:4318/v1/traces"},
		{name: "exporter none", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_TRACES_EXPORTER": "none"},
			wantEndpoint: "http://a:4318/v1/traces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tracing.FromEnv(env(tt.env))
			if c.Endpoint != tt.wantEndpoint || c.Exporting() != tt.wantExporting {
				t.Fatalf("endpoint %q exporting %v, want %q %v", c.Endpoint, c.Exporting(), tt.wantEndpoint, tt.wantExporting)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr error
	}{
		{name: "defaults", env: nil},
		{name: "ratio", env: map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}},
		{name: "upper case sampler", env: map[string]string{"OTEL_TRACES_SAMPLER": "ALWAYS_ON"}},
		{name: "unknown sampler", env: map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}, wantErr: tracing.ErrInvalidConfig},
		{name: "ratio above 1", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "10"}, wantErr: tracing.ErrInvalidConfig},
		{name: "ratio not a number", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "ten"}, wantErr: tracing.ErrInvalidConfig},
		{name: "endpoint without scheme", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, wantErr: tracing.ErrInvalidConfig},
		{name: "attribute without value", env: map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "a=1,broken"}, wantErr: tracing.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tracing.FromEnv(env(tt.env)).Validate(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestSamplerChoice checks which sampler each setting makes, by what it
// decides: for a root span, and for a child of a sampled and of an unsampled
// remote parent.
func TestSamplerChoice(t *testing.T) {
	t.Parallel()
	// A receiver that takes whatever the exporters send at shutdown.
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	t.Cleanup(rcv.Close)
	endpoint := rcv.URL + "/v1/traces"
	sampled := remote(t, trace.FlagsSampled)
	unsampled := remote(t, 0)
	tests := []struct {
		name                               string
		cfg                                tracing.Config
		wantRoot, wantSampled, wantUnsampl bool
	}{
		{name: "default is parentbased_always_on", cfg: tracing.Config{Endpoint: endpoint},
			wantRoot: true, wantSampled: true},
		{name: "always_on", cfg: tracing.Config{Endpoint: endpoint, Sampler: "always_on"},
			wantRoot: true, wantSampled: true, wantUnsampl: true},
		{name: "always_off", cfg: tracing.Config{Endpoint: endpoint, Sampler: "always_off"}},
		{name: "parentbased_always_off follows a sampled parent", cfg: tracing.Config{Endpoint: endpoint, Sampler: "parentbased_always_off"},
			wantSampled: true},
		{name: "ratio 0", cfg: tracing.Config{Endpoint: endpoint, Sampler: "traceidratio", SamplerArg: "0"}},
		{name: "parentbased ratio 0 follows a sampled parent", cfg: tracing.Config{Endpoint: endpoint, Sampler: "parentbased_traceidratio", SamplerArg: "0"},
			wantSampled: true},
		{name: "no endpoint: never sampled, whatever is asked", cfg: tracing.Config{Sampler: "always_on"}},
		{name: "disabled: never sampled", cfg: tracing.Config{Endpoint: endpoint, Sampler: "always_on", Disabled: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := tracing.NewProvider(tt.cfg, "test")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
			tr := p.TracerProvider().Tracer("t")
			for _, c := range []struct {
				what   string
				parent context.Context
				want   bool
			}{
				{"root", context.Background(), tt.wantRoot},
				{"child of sampled", sampled, tt.wantSampled},
				{"child of unsampled", unsampled, tt.wantUnsampl},
			} {
				_, span := tr.Start(c.parent, "s")
				sc, recording := span.SpanContext(), span.IsRecording()
				span.End()
				if sc.IsSampled() != c.want || recording != c.want {
					t.Errorf("%s: sampled %v recording %v, want %v", c.what, sc.IsSampled(), recording, c.want)
				}
				// Sampled or not, the span has its own ids in the parent's
				// trace: trace ids propagate with tracing off.
				if !sc.IsValid() {
					t.Errorf("%s: span context not valid", c.what)
				}
				if p := trace.SpanContextFromContext(c.parent); p.IsValid() && (sc.TraceID() != p.TraceID() || sc.SpanID() == p.SpanID()) {
					t.Errorf("%s: span %s/%s is not a child of %s/%s", c.what, sc.TraceID(), sc.SpanID(), p.TraceID(), p.SpanID())
				}
			}
		})
	}
}

func remote(t *testing.T, flags trace.TraceFlags) context.Context {
	t.Helper()
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	return trace.ContextWithRemoteSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true}))
}

func TestServiceNameAndResourceAttributes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cfg      tracing.Config
		wantName string
	}{
		{name: "the service's own name", cfg: tracing.Config{}, wantName: "order-service"},
		{name: "service.name attribute", cfg: tracing.Config{ResourceAttributes: "service.name=orders,deployment.environment.name=dev"}, wantName: "orders"},
		{name: "OTEL_SERVICE_NAME wins", cfg: tracing.Config{ServiceName: "svc", ResourceAttributes: "service.name=orders"}, wantName: "svc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := tracetest.NewSpanRecorder()
			res, err := tracing.Resource(tt.cfg, "order-service")
			if err != nil {
				t.Fatal(err)
			}
			sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithResource(res))
			_, span := sdk.Tracer("t").Start(context.Background(), "s")
			span.End()
			got := map[string]string{}
			for _, kv := range rec.Ended()[0].Resource().Attributes() {
				got[string(kv.Key)] = kv.Value.AsString()
			}
			if got["service.name"] != tt.wantName {
				t.Fatalf("service.name = %q, want %q (resource %v)", got["service.name"], tt.wantName, got)
			}
			if strings.Contains(tt.cfg.ResourceAttributes, "deployment") && got["deployment.environment.name"] != "dev" {
				t.Fatalf("resource %v lacks deployment.environment.name=dev", got)
			}
		})
	}
}

// TestHeaderCarrierKeepsLowerCase is why the carrier exists: NATS headers
// are case-sensitive, consumers read "traceparent", and the HTTP carrier
// writes "Traceparent".
func TestHeaderCarrierKeepsLowerCase(t *testing.T) {
	t.Parallel()
	ctx := remote(t, trace.FlagsSampled)
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

	h := nats.Header{}
	tracing.Propagator.Inject(ctx, tracing.HeaderCarrier(h))
	if got := h.Get("traceparent"); got != want {
		t.Fatalf("nats header traceparent = %q, want %q (header %v)", got, want, h)
	}
	if _, upper := h["Traceparent"]; upper {
		t.Fatalf("header has a Traceparent key: %v", h)
	}
	back := trace.SpanContextFromContext(tracing.Propagator.Extract(context.Background(), tracing.HeaderCarrier(h)))
	if tracing.Traceparent(back) != want || !back.IsRemote() {
		t.Fatalf("extracted %v, want %s", back, want)
	}

	// The HTTP carrier would have written a key no consumer reads.
	hh := http.Header{}
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(hh))
	if nats.Header(hh).Get("traceparent") != "" {
		t.Fatal("propagation.HeaderCarrier now keeps lower case: the NATS carrier may be unnecessary")
	}

	// A message without headers has no parent and does not panic.
	var none nats.Header
	tracing.HeaderCarrier(none).Set("traceparent", want)
	if sc := trace.SpanContextFromContext(tracing.Propagator.Extract(context.Background(), tracing.HeaderCarrier(none))); sc.IsValid() {
		t.Fatalf("extracted %v from no headers", sc)
	}
}

func TestWithParent(t *testing.T) {
	t.Parallel()
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	got := trace.SpanContextFromContext(tracing.WithParent(context.Background(), tp))
	if tracing.Traceparent(got) != tp {
		t.Fatalf("WithParent(background, %s) holds %s", tp, tracing.Traceparent(got))
	}
	// A span already in ctx wins over the string.
	ctx := remote(t, 0)
	if got := trace.SpanContextFromContext(tracing.WithParent(ctx, "00-11111111111111111111111111111111-2222222222222222-01")); got.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("WithParent replaced the context's span: %v", got)
	}
	if got := trace.SpanContextFromContext(tracing.WithParent(context.Background(), "garbage")); got.IsValid() {
		t.Fatalf("WithParent(garbage) = %v", got)
	}
}
