// Package trace creates and propagates W3C trace context (traceparent)
// values without an OpenTelemetry SDK: every event and log line carries the
// trace id of the request that started the order.
package trace

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrInvalid marks a malformed traceparent.
var ErrInvalid = errors.New("invalid traceparent")

// Context is a parsed traceparent: version 00, trace id, parent span id and
// flags.
type Context struct {
	TraceID string
	SpanID  string
	Flags   string
}

// String formats c as a traceparent header value.
func (c Context) String() string { return "00-" + c.TraceID + "-" + c.SpanID + "-" + c.Flags }

// Parse parses a traceparent header value.
func Parse(s string) (Context, error) {
	p := strings.Split(strings.TrimSpace(s), "-")
	if len(p) != 4 || p[0] != "00" || !isHex(p[1], 32) || !isHex(p[2], 16) || !isHex(p[3], 2) ||
		p[1] == strings.Repeat("0", 32) || p[2] == strings.Repeat("0", 16) {
		return Context{}, fmt.Errorf("%q: %w", s, ErrInvalid)
	}
	return Context{TraceID: p[1], SpanID: p[2], Flags: p[3]}, nil
}

// New starts a new sampled trace.
func New() Context {
	return Context{TraceID: randHex(16), SpanID: randHex(8), Flags: "01"}
}

// Child returns a traceparent for work caused by parent: the same trace id
// and a new span id. An invalid parent starts a new trace.
func Child(parent string) Context {
	c, err := Parse(parent)
	if err != nil {
		return New()
	}
	c.SpanID = randHex(8)
	return c
}

// TraceID returns the trace id of a traceparent value, or "" if invalid.
func TraceID(traceparent string) string {
	c, err := Parse(traceparent)
	if err != nil {
		return ""
	}
	return c.TraceID
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (Go 1.24+)
	return hex.EncodeToString(b)
}

func isHex(s string, n int) bool {
	if len(s) != n || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
