// Package logging builds the JSON zap loggers every service uses and the
// fields that tie a log line to an order and a trace.
package logging

import (
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a JSON logger at the given level ("debug", "info", "warn",
// "error") whose every line carries the service name.
func New(service, level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.EncoderConfig.TimeKey = "time"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.Sampling = nil
	log, err := cfg.Build()
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	return log.With(zap.String("service", service)), nil
}

// Order returns the fields every log line about an order carries.
func Order(orderID, traceID string) []zap.Field {
	return []zap.Field{zap.String("order_id", orderID), zap.String("trace_id", traceID)}
}
