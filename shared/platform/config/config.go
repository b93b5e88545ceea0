// Package config reads a service's settings from its environment once, with
// defaults, and logs them. A service's Config is a struct whose fields name
// their variable in an `env` tag and their default in `envDefault`
// (caarlos0/env reads them); Base holds the settings every service shares
// and is embedded in each. The start-up log line is made from the same
// tags (Fields), so it cannot leave a setting out; `log:"secret"` masks a
// value and `log:"urls"` hides the passwords in a list of URLs.
package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"go.uber.org/zap"
)

// Mask hides a secret for logging, keeping only whether it is set.
func Mask(secret string) string {
	if secret == "" {
		return ""
	}
	return "****"
}

// Settings is what Load needs of a service's Config: it fills the defaults
// no tag can give (SetDefaults) and validates itself. P is the pointer to
// the Config type C.
type Settings[C any] interface {
	*C
	SetDefaults()
	Validate() error
}

// envReader is a Config part read by its own code rather than by tags (the
// OpenTelemetry variables: tracing.FromEnv).
type envReader interface {
	ReadEnv(get func(key string) string)
}

// Load is how every service reads its Config, once, at start-up: every
// tagged field from lookup (os.LookupEnv in main; an empty value counts as
// unset), then SetDefaults (which calls Defaults: an explicit zero, such as
// STREAM_REPLICAS=0, means the default too) and Validate. A malformed value is wrapped with errInvalid,
// the service's sentinel, and named by its variable; Validate's error is
// returned as it is (it wraps errInvalid itself).
func Load[C any, P Settings[C]](lookup func(string) (string, bool), errInvalid error) (C, error) {
	var zero C
	environ := map[string]string{}
	for _, v := range vars(reflect.TypeFor[C]()) {
		if s, ok := lookup(v.name); ok && s != "" {
			environ[v.name] = s
		}
	}
	c, err := parse[C](environ)
	if err != nil {
		return zero, fmt.Errorf("%w: %w", errInvalid, err)
	}
	if r, ok := any(P(&c)).(envReader); ok {
		r.ReadEnv(func(key string) string { s, _ := lookup(key); return s })
	}
	P(&c).SetDefaults()
	if err := P(&c).Validate(); err != nil {
		return zero, err
	}
	return c, nil
}

func parse[C any](environ map[string]string) (C, error) {
	var c C
	err := env.ParseWithOptions(&c, env.Options{Environment: environ})
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return c, err
	}
	byField := map[string]string{}
	for _, v := range vars(reflect.TypeFor[C]()) {
		byField[v.field] = v.name
	}
	var errs []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			errs = append(errs, e)
			continue
		}
		name := byField[pe.Name]
		errs = append(errs, fmt.Errorf("%s=%q: not %s", name, environ[name], kind(pe.Type)))
	}
	return c, errors.Join(errs...)
}

// Defaults sets every tagged field of the Config *c that is zero to its
// envDefault: what a variable left unset (or set to zero) gets. A service's
// SetDefaults calls it, so a Config built by hand in a test gets them too.
func Defaults(c any) {
	// Nothing to parse but the defaults: no error is possible but a
	// malformed envDefault tag, which the tests of every Config catch.
	if err := env.ParseWithOptions(c, env.Options{Environment: map[string]string{}, SetDefaultsForZeroValuesOnly: true}); err != nil {
		panic(fmt.Sprintf("config defaults: %v", err))
	}
}

// kind names what a value of t must be, for a person.
func kind(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "a duration (for example 5s or 2m)"
	case t.Kind() == reflect.Bool:
		return "a boolean (true or false)"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	}
	return "a " + t.String()
}

type variable struct{ field, name string }

// vars lists the variables of the tagged fields of t, nested structs too.
func vars(t reflect.Type) []variable {
	var out []variable
	leaves(reflect.New(t).Elem(), func(f reflect.StructField, _ reflect.Value) {
		out = append(out, variable{field: f.Name, name: f.Tag.Get("env")})
	})
	return out
}

// leaves calls fn for every field of the struct v with an env tag, in
// order, looking into the fields without one that are structs.
func leaves(v reflect.Value, fn func(f reflect.StructField, v reflect.Value)) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		switch name := f.Tag.Get("env"); {
		case name == "-" || !f.IsExported():
		case name != "":
			fn(f, v.Field(i))
		case f.Type.Kind() == reflect.Struct:
			leaves(v.Field(i), fn)
		}
	}
}

// fielder is a Config part that logs itself (tracing.Config).
type fielder interface {
	Fields() []zap.Field
}

// Fields returns every setting of the Config c as log fields, named after
// their variables in lower case, secrets masked; a part that is not read
// by tags but logs itself (Fields method) becomes one nested field.
func Fields(c any) []zap.Field {
	var out []zap.Field
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f, fv := t.Field(i), v.Field(i)
			name := f.Tag.Get("env")
			switch {
			case !f.IsExported():
			case name != "" && name != "-":
				out = append(out, field(strings.ToLower(name), f.Tag.Get("log"), fv))
			case !f.Anonymous && fv.CanInterface():
				if p, ok := fv.Interface().(fielder); ok {
					out = append(out, zap.Dict(strings.ToLower(f.Name), p.Fields()...))
					continue
				}
				if f.Type.Kind() == reflect.Struct {
					walk(fv)
				}
			case f.Type.Kind() == reflect.Struct:
				walk(fv)
			}
		}
	}
	walk(reflect.Indirect(reflect.ValueOf(c)))
	return out
}

func field(key, how string, v reflect.Value) zap.Field {
	switch how {
	case "secret":
		return zap.String(key, Mask(v.String()))
	case "urls":
		return zap.String(key, redactURLs(v.String()))
	}
	if d, ok := v.Interface().(time.Duration); ok {
		return zap.Duration(key, d)
	}
	return zap.Any(key, v.Interface())
}
