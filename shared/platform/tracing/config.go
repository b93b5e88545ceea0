package tracing

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/zap"
)

// ErrInvalidConfig marks a tracing setting that cannot work.
var ErrInvalidConfig = errors.New("invalid tracing configuration")

// Sampler names of OTEL_TRACES_SAMPLER (the SDK specification's values that
// need no extra component).
const (
	SamplerAlwaysOn                = "always_on"
	SamplerAlwaysOff               = "always_off"
	SamplerTraceIDRatio            = "traceidratio"
	SamplerParentBasedAlwaysOn     = "parentbased_always_on"
	SamplerParentBasedAlwaysOff    = "parentbased_always_off"
	SamplerParentBasedTraceIDRatio = "parentbased_traceidratio"
)

// Config is the tracing part of a service's configuration, read from the
// standard OpenTelemetry environment variables.
type Config struct {
	// Endpoint is the OTLP/HTTP traces URL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
	// as given, or OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces appended.
	// Empty: nothing is exported (spans are not even recorded), but trace
	// context still propagates, so logs and events keep their trace ids.
	Endpoint string
	// ServiceName (OTEL_SERVICE_NAME) overrides the service's own name
	// and a service.name in ResourceAttributes.
	ServiceName string
	// Sampler (OTEL_TRACES_SAMPLER, default parentbased_always_on) and
	// SamplerArg (OTEL_TRACES_SAMPLER_ARG, the ratio of the *traceidratio
	// samplers, default 1).
	Sampler    string
	SamplerArg string
	// ResourceAttributes (OTEL_RESOURCE_ATTRIBUTES): key=value pairs,
	// comma-separated, values percent-encoded.
	ResourceAttributes string
	// Disabled is OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none:
	// nothing is exported whatever the endpoint says.
	Disabled bool
}

// FromEnv reads the configuration through get (config.Load passes the
// service's environment; a test, os.Getenv), once, where the service
// reads the rest of its settings.
func FromEnv(get func(key string) string) Config {
	c := Config{
		Endpoint:           strings.TrimSpace(get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")),
		ServiceName:        strings.TrimSpace(get("OTEL_SERVICE_NAME")),
		Sampler:            strings.ToLower(strings.TrimSpace(get("OTEL_TRACES_SAMPLER"))),
		SamplerArg:         strings.TrimSpace(get("OTEL_TRACES_SAMPLER_ARG")),
		ResourceAttributes: strings.TrimSpace(get("OTEL_RESOURCE_ATTRIBUTES")),
	}
	if c.Endpoint == "" {
		if base := strings.TrimSpace(get("OTEL_EXPORTER_OTLP_ENDPOINT")); base != "" {
			c.Endpoint = strings.TrimRight(base, "/") + "/v1/traces"
		}
	}
	disabled, _ := strconv.ParseBool(strings.TrimSpace(get("OTEL_SDK_DISABLED")))
	c.Disabled = disabled || strings.EqualFold(strings.TrimSpace(get("OTEL_TRACES_EXPORTER")), "none")
	return c
}

// Exporting reports whether spans are recorded and exported.
func (c Config) Exporting() bool { return c.Endpoint != "" && !c.Disabled }

// Validate reports every setting that cannot work, joined.
func (c Config) Validate() error {
	var errs []error
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("OTLP traces endpoint %q: want http(s)://host:port[/path]: %w", c.Endpoint, ErrInvalidConfig))
		}
	}
	if _, err := c.sampler(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.attributes(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Fields returns the settings as log fields.
func (c Config) Fields() []zap.Field {
	return []zap.Field{
		zap.String("otel_traces_endpoint", c.Endpoint),
		zap.String("otel_service_name", c.ServiceName),
		zap.String("otel_traces_sampler", c.Sampler),
		zap.String("otel_traces_sampler_arg", c.SamplerArg),
		zap.String("otel_resource_attributes", c.ResourceAttributes),
		zap.Bool("otel_exporting", c.Exporting()),
	}
}

// sampler returns the sampler the settings name. Without an exporter it is
// never-sample, whatever was asked: recording spans nobody receives is
// pure cost.
func (c Config) sampler() (sdktrace.Sampler, error) {
	ratio := 1.0
	if c.SamplerArg != "" && strings.HasSuffix(c.Sampler, SamplerTraceIDRatio) {
		r, err := strconv.ParseFloat(c.SamplerArg, 64)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio in [0, 1]: %w", c.SamplerArg, ErrInvalidConfig)
		}
		ratio = r
	}
	var s sdktrace.Sampler
	switch c.Sampler {
	case "", SamplerParentBasedAlwaysOn:
		s = sdktrace.ParentBased(sdktrace.AlwaysSample())
	case SamplerAlwaysOn:
		s = sdktrace.AlwaysSample()
	case SamplerAlwaysOff:
		s = sdktrace.NeverSample()
	case SamplerTraceIDRatio:
		s = sdktrace.TraceIDRatioBased(ratio)
	case SamplerParentBasedAlwaysOff:
		s = sdktrace.ParentBased(sdktrace.NeverSample())
	case SamplerParentBasedTraceIDRatio:
		s = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
	default:
		return nil, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: want one of %s, %s, %s, %s, %s, %s: %w", c.Sampler,
			SamplerAlwaysOn, SamplerAlwaysOff, SamplerTraceIDRatio,
			SamplerParentBasedAlwaysOn, SamplerParentBasedAlwaysOff, SamplerParentBasedTraceIDRatio, ErrInvalidConfig)
	}
	if !c.Exporting() {
		return sdktrace.NeverSample(), nil
	}
	return s, nil
}

// attributes parses ResourceAttributes (key=value,key=value, values
// percent-encoded, as the specification says).
func (c Config) attributes() ([]attribute.KeyValue, error) {
	if c.ResourceAttributes == "" {
		return nil, nil
	}
	var attrs []attribute.KeyValue
	for _, pair := range strings.Split(c.ResourceAttributes, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %q is not key=value: %w", pair, ErrInvalidConfig)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: value of %q: %w: %w", k, ErrInvalidConfig, err)
		}
		attrs = append(attrs, attribute.String(k, dv))
	}
	return attrs, nil
}
