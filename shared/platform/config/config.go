// Package config reads a service's settings from its environment once, with
// defaults, collecting every malformed value into one error. Base holds the
// settings every service shares; a service embeds it in its own Config.
package config

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Reader reads typed values from a lookup function such as os.LookupEnv.
type Reader struct {
	lookup func(string) (string, bool)
	errs   []error
}

// New returns a Reader over lookup.
func New(lookup func(string) (string, bool)) *Reader { return &Reader{lookup: lookup} }

// String returns the value of key, or def when unset or empty.
func (r *Reader) String(key, def string) string {
	if v, ok := r.lookup(key); ok && v != "" {
		return v
	}
	return def
}

// Int returns the integer value of key, or def.
func (r *Reader) Int(key string, def int) int {
	v := r.String(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: not an integer", key, v))
		return def
	}
	return n
}

// Bool returns the boolean value of key (1, t, true, 0, f, false, ...), or def.
func (r *Reader) Bool(key string, def bool) bool {
	v := r.String(key, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: not a boolean", key, v))
		return def
	}
	return b
}

// Duration returns the duration value of key (for example "5s"), or def.
func (r *Reader) Duration(key string, def time.Duration) time.Duration {
	v := r.String(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: not a duration", key, v))
		return def
	}
	return d
}

// Float returns the float value of key, or def.
func (r *Reader) Float(key string, def float64) float64 {
	v := r.String(key, "")
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s=%q: not a number", key, v))
		return def
	}
	return f
}

// Err returns every malformed value seen so far, joined.
func (r *Reader) Err() error { return errors.Join(r.errs...) }

// Mask hides a secret for logging, keeping only whether it is set.
func Mask(secret string) string {
	if secret == "" {
		return ""
	}
	return "****"
}

// Settings is what Load needs of a service's Config: it fills its own
// defaults and validates itself. P is the pointer to the Config type C.
type Settings[C any] interface {
	*C
	SetDefaults()
	Validate() error
}

// Load is how every service reads its Config, once, at start-up: read it
// through a Reader over lookup (os.LookupEnv in main), fill the defaults,
// validate. Malformed values are wrapped with errInvalid, the service's
// sentinel; Validate's error is returned as it is (it wraps errInvalid
// itself).
func Load[C any, P Settings[C]](lookup func(string) (string, bool), errInvalid error, read func(r *Reader) C) (C, error) {
	r := New(lookup)
	c := read(r)
	if err := r.Err(); err != nil {
		var zero C
		return zero, fmt.Errorf("%w: %w", errInvalid, err)
	}
	P(&c).SetDefaults()
	if err := P(&c).Validate(); err != nil {
		var zero C
		return zero, err
	}
	return c, nil
}
