package events

import (
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// SpecVersion is the CloudEvents version of every envelope.
const SpecVersion = "1.0"

// ContentType is the only data content type the system produces.
const ContentType = "application/json"

// HeaderTraceparent is the lower-case W3C trace context header set on every
// published message (nats.Header is case-sensitive).
const HeaderTraceparent = "traceparent"

// Sentinel errors of the contracts.
var (
	// ErrInvalidEvent marks an event that fails its envelope or data schema.
	// It is permanent: redelivery cannot fix it.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrUnknownType marks an event type (or schema) this build does not know.
	ErrUnknownType = errors.New("unknown event type")
	// ErrInvalidID marks an order id or SKU that cannot be a subject token.
	ErrInvalidID = errors.New("invalid id")
)

// Envelope is a CloudEvents 1.0 structured-mode event with a W3C
// traceparent extension. Subject is always the order id.
type Envelope struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            Type            `json:"type"`
	Subject         string          `json:"subject"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	DataSchema      string          `json:"dataschema"`
	TraceParent     string          `json:"traceparent"`
	Data            json.RawMessage `json:"data"`
}

// TraceID returns the trace id part of the envelope's traceparent.
func (e Envelope) TraceID() string {
	parts := strings.Split(e.TraceParent, "-")
	if len(parts) != 4 {
		return ""
	}
	return parts[1]
}
