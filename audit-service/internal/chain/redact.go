package chain

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// secretFields are the fields of an event's data that the audit trail must
// not hold in the clear: the trail is served over HTTP to anyone who may read
// order timelines, and it keeps every entry for ever (nothing may delete
// one). The order's created event carries the payment token the payment
// service charges, and from v2 on the created and confirmed events carry
// the customer's shipping address (personal data: a log that can never
// forget must not hold it); only the ORDERS stream keeps them.
var secretFields = []string{"payment_token", "shipping_address"}

// FingerprintPrefix starts every fingerprint that replaces a secret.
const FingerprintPrefix = "hmac-sha256:"

// MinKeyLen is the shortest fingerprint key accepted, in bytes.
const MinKeyLen = 32

// ErrShortKey marks a fingerprint key too short to keep secrets unguessable.
var ErrShortKey = errors.New("fingerprint key too short")

// Redactor replaces the secrets of events by keyed fingerprints before they
// enter the trail.
//
// A plain hash would not hide a payment token: tokens come from a small,
// guessable set (tok_visa, tok_mastercard, ...), so anyone reading a
// timeline could hash the candidates and find the one that matches. The
// fingerprint is HMAC-SHA256 under a key only the audit service holds: an
// operator holding the key (and the token) can still prove which token an
// order carried; a reader of the timeline cannot test guesses.
type Redactor struct {
	key []byte
}

// NewRedactor returns a Redactor fingerprinting under key (at least
// MinKeyLen bytes).
func NewRedactor(key []byte) (*Redactor, error) {
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("%w: %d bytes, want at least %d", ErrShortKey, len(key), MinKeyLen)
	}
	return &Redactor{key: bytes.Clone(key)}, nil
}

// Fingerprint returns the fingerprint that stands for secret in the trail:
// FingerprintPrefix + hex(HMAC-SHA256(key, secret)).
func (r *Redactor) Fingerprint(secret string) string {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(secret))
	return FingerprintPrefix + hex.EncodeToString(m.Sum(nil))
}

// Redact returns the event with every secret field of its data replaced by
// its Fingerprint. An event without secrets is returned unchanged, byte for
// byte.
func (r *Redactor) Redact(raw []byte) ([]byte, error) {
	// Every event passes here and few carry a secret: decode only those
	// whose bytes name one.
	named := false
	for _, f := range secretFields {
		named = named || bytes.Contains(raw, []byte(`"`+f+`"`))
	}
	if !named {
		if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' || !json.Valid(t) {
			return nil, fmt.Errorf("%w: event is not a JSON object", ErrInvalidRecord)
		}
		return raw, nil
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("%w: event is not a JSON object: %w", ErrInvalidRecord, err)
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(env["data"], &data); err != nil || data == nil {
		return raw, nil // no object data: nothing to redact
	}
	changed := false
	for _, f := range secretFields {
		v, ok := data[f]
		if !ok {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			s = string(v) // not a string: fingerprint its JSON form
		}
		fp, err := json.Marshal(r.Fingerprint(s))
		if err != nil {
			return nil, err
		}
		data[f] = fp
		changed = true
	}
	if !changed {
		return raw, nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	env["data"] = b
	return json.Marshal(env)
}
