// Package app is the audit service's use cases: record every event of the
// domain streams once in the hash chain (Record, called by the consumers),
// and read the chain back (Timeline and Verify, called by the HTTP API).
package app

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/eventshop/audit-service/internal/chain"
)

// ErrInvalidOption is returned by New given a dependency it cannot use.
var ErrInvalidOption = errors.New("invalid audit app option")

// Appender appends a record to the audit chain (idempotent per event): it
// returns the record's entry and whether the event was already audited.
type Appender interface {
	Append(ctx context.Context, rec chain.Record) (chain.Entry, bool, error)
}

// Reader reads the audit chain.
type Reader interface {
	Timeline(ctx context.Context, orderID string) ([]chain.Entry, error)
	Verify(ctx context.Context) (chain.Result, error)
}

// App is the audit service's use cases.
type App struct {
	chain  Appender
	reader Reader
	red    *chain.Redactor
	log    *zap.Logger
}

// New returns the audit use cases on the chain's appender and reader,
// storing events as red redacts them. Every dependency is required: the
// audit has nothing optional.
func New(appender Appender, reader Reader, red *chain.Redactor, log *zap.Logger) (*App, error) {
	if appender == nil || reader == nil || red == nil || log == nil {
		return nil, fmt.Errorf("audit app needs an appender, a reader, a redactor and a logger: %w", ErrInvalidOption)
	}
	return &App{chain: appender, reader: reader, red: red, log: log}, nil
}
