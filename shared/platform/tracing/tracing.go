// Package tracing sets up OpenTelemetry tracing from the standard
// environment variables and carries W3C trace context through NATS
// headers. With no OTLP endpoint nothing is recorded or exported, but every
// span still gets its ids, so the trace context (and with it the trace id
// of every log line and event) flows as before, at the cost of an id.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Messaging attributes of the OpenTelemetry semantic conventions, as the
// publisher and the consumer runner set them.
const (
	AttrMessagingSystem         = attribute.Key("messaging.system")
	AttrDestinationName         = attribute.Key("messaging.destination.name")
	AttrDestinationTemplate     = attribute.Key("messaging.destination.template")
	AttrMessageID               = attribute.Key("messaging.message.id")
	AttrOperationType           = attribute.Key("messaging.operation.type")
	AttrConsumerGroupName       = attribute.Key("messaging.consumer.group.name")
	MessagingSystemNATS         = "nats"
	OperationSend               = "send"
	OperationProcess            = "process"
	defaultShutdownFlushTimeout = 5 * time.Second
)

// Propagator is the trace context format on the wire: W3C traceparent (and
// tracestate), nothing else.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// recording is whether the installed provider exports spans.
var recording atomic.Bool

// Recording reports whether Setup installed a provider that records and
// exports spans. Without one, instrumentation whose only product is the
// span (otelgin's and otelhttp's attributes and metrics) is skipped, and
// only the ids travel: the cost of tracing off stays near zero.
func Recording() bool { return recording.Load() }

// Provider is a service's tracer provider. Setup installs it as the global
// one, which otelgin, otelhttp, the publisher and the consumer runner use.
type Provider struct {
	tp        *sdktrace.TracerProvider
	exporting bool
}

// Setup builds the tracer provider cfg describes for the named service and
// installs it, with the W3C propagator, as OpenTelemetry's global. Call
// Shutdown when the service has stopped, to flush what is buffered.
func Setup(cfg Config, service string, log *zap.Logger) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tp, err := NewProvider(cfg, service)
	if err != nil {
		return nil, err
	}
	otel.SetTracerProvider(tp.tp)
	otel.SetTextMapPropagator(Propagator)
	recording.Store(tp.exporting)
	if log != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("tracing: span export failed", zap.Error(err))
		}))
		if tp.exporting {
			log.Info("tracing: exporting spans", zap.String("endpoint", cfg.Endpoint), zap.String("sampler", cfg.Sampler))
		}
	}
	return tp, nil
}

// NewProvider builds the tracer provider cfg describes without installing
// it (tests install theirs where they need it).
func NewProvider(cfg Config, service string) (*Provider, error) {
	sampler, err := cfg.sampler()
	if err != nil {
		return nil, err
	}
	res, err := Resource(cfg, service)
	if err != nil {
		return nil, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithSampler(sampler), sdktrace.WithResource(res)}
	if cfg.Exporting() {
		exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(cfg.Endpoint))
		if err != nil {
			return nil, fmt.Errorf("otlp exporter for %s: %w", cfg.Endpoint, err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return &Provider{tp: sdktrace.NewTracerProvider(opts...), exporting: cfg.Exporting()}, nil
}

// Resource describes the process the spans come from: OTEL_RESOURCE_ATTRIBUTES,
// and service.name from, in order of precedence, OTEL_SERVICE_NAME, the
// attributes, and the service's own name.
func Resource(cfg Config, service string) (*resource.Resource, error) {
	attrs, err := cfg.attributes()
	if err != nil {
		return nil, err
	}
	name := service
	for _, a := range attrs {
		if a.Key == "service.name" {
			name = a.Value.AsString()
		}
	}
	if cfg.ServiceName != "" {
		name = cfg.ServiceName
	}
	// Later attributes win in a resource: the name goes last.
	return resource.NewSchemaless(append(attrs, attribute.String("service.name", name))...), nil
}

// TracerProvider returns the provider, for instrumentation that takes one.
func (p *Provider) TracerProvider() trace.TracerProvider { return p.tp }

// Exporting reports whether spans are recorded and exported.
func (p *Provider) Exporting() bool { return p.exporting }

// Shutdown flushes the buffered spans and stops the exporter, within 5 s
// or ctx, whichever ends first.
func (p *Provider) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, defaultShutdownFlushTimeout)
	defer cancel()
	if err := p.tp.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("tracing shutdown: %w", err)
	}
	return nil
}

// Traceparent formats sc as a W3C traceparent value, or "" if sc is not
// valid.
func Traceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

// TraceID returns the trace id of the span in ctx, or "" without one.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return sc.TraceID().String()
}

// WithParent returns ctx if it already holds a span; otherwise ctx with
// the remote parent that traceparent names (ctx unchanged if it names
// none). Work that was handed a traceparent string but not its context
// (a publish outside a traced handler) stays in the trace.
func WithParent(ctx context.Context, traceparent string) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() || traceparent == "" {
		return ctx
	}
	return Propagator.Extract(ctx, singleCarrier(traceparent))
}

// singleCarrier carries just a traceparent value.
type singleCarrier string

func (c singleCarrier) Get(key string) string {
	if key == "traceparent" {
		return string(c)
	}
	return ""
}
func (singleCarrier) Set(string, string) {}
func (singleCarrier) Keys() []string     { return []string{"traceparent"} }
