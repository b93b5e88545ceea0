package tracing

import "github.com/nats-io/nats.go"

// HeaderCarrier adapts nats.Header to a propagation.TextMapCarrier. NATS
// header keys are case-sensitive and every consumer reads "traceparent"
// lower-case: propagation.HeaderCarrier would write the canonical
// "Traceparent", which nobody would find. Keys are used exactly as given.
type HeaderCarrier nats.Header

// Get returns the first value of key, or "".
func (c HeaderCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces the values of key with value. A nil carrier ignores it.
func (c HeaderCarrier) Set(key, value string) {
	if c != nil {
		c[key] = []string{value}
	}
}

// Keys lists the keys present.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
