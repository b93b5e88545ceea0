// Package kvstore keeps typed values in a JetStream key-value bucket: Repo
// reads a JSON value with its revision, creates a key once, changes it by
// compare-and-set on the revision read, and modifies it with bounded,
// jittered retries of a lost compare-and-set (Modify; Retry for callers
// whose read-decide-write spans more than one key). A lost compare-and-set
// is ErrConflict and a missing key ErrNotFound, however the server and
// nats.go report them, so the services detect each one way.
package kvstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/tracing"
)

// Errors of a Repo. Each wraps nats.go's own error too, where there is one.
var (
	// ErrNotFound: the key has no value (never written, or deleted).
	ErrNotFound = errors.New("key not found")
	// ErrConflict: a compare-and-set lost. Create found the key written;
	// Update found it at another revision than the one read.
	ErrConflict = errors.New("compare-and-set conflict")
	// ErrCorrupt: a stored value does not decode into the Repo's type.
	ErrCorrupt = errors.New("stored value does not decode")
	// ErrInvalidOption is returned by an option given a value it cannot use.
	ErrInvalidOption = errors.New("invalid option")
)

// scope is the instrumentation scope of the spans of a Repo given none
// (WithTracer).
const scope = "github.com/eventshop/shared/platform/kvstore"

// Repo stores values of type T, as JSON, under the keys of one bucket that
// start with its prefix (WithPrefix). Every operation is a CLIENT span
// "kv <op> <bucket>", a child of the span in its context, started only when
// that span is recorded (tracing.StartKV): a missing key and a lost
// compare-and-set are answers on it, not failures.
type Repo[T any] struct {
	kv        jetstream.KeyValue
	bucket    string
	o         options
	putPrefix string // the subject a key is written under: $KV.<bucket>.
}

// New returns the Repo of values of type T in kv.
func New[T any](kv jetstream.KeyValue, opts ...Option) (*Repo[T], error) {
	if kv == nil {
		return nil, fmt.Errorf("kvstore: bucket is nil: %w", ErrInvalidOption)
	}
	o := options{scope: scope}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("kvstore %s: %w", kv.Bucket(), err)
		}
	}
	return &Repo[T]{kv: kv, bucket: kv.Bucket(), o: o, putPrefix: "$KV." + kv.Bucket() + "."}, nil
}

// Get returns the value of key and the revision it was read at, or an
// error wrapping ErrNotFound or ErrCorrupt. With WithLeaderReads it reads
// through the stream's leader.
func (r *Repo[T]) Get(ctx context.Context, key string) (v T, rev uint64, err error) {
	k := r.o.prefix + key
	op := "get"
	if r.o.leader != nil {
		op = "leader_get"
	}
	ctx, span := r.start(ctx, op, k)
	defer func() { r.end(span, rev, err) }()
	var raw []byte
	if r.o.leader != nil {
		raw, rev, err = r.leaderGet(ctx, k)
	} else {
		var e jetstream.KeyValueEntry
		if e, err = r.kv.Get(ctx, k); err == nil {
			raw, rev = e.Value(), e.Revision()
		}
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return v, 0, fmt.Errorf("get %s: %w: %w", k, ErrNotFound, err)
	case err != nil:
		return v, 0, fmt.Errorf("get %s: %w", k, err)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		var zero T
		return zero, 0, fmt.Errorf("decode %s at revision %d: %w: %w", k, rev, ErrCorrupt, err)
	}
	return v, rev, nil
}

// leaderGet reads the last value of key from the stream's leader, so the
// read reflects every write acknowledged before it (natsconn.LeaderLast; a
// KV get is a direct get, which any replica answers).
func (r *Repo[T]) leaderGet(ctx context.Context, key string) ([]byte, uint64, error) {
	m, err := natsconn.LeaderLast(ctx, r.o.leader, "KV_"+r.bucket, r.putPrefix+key)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, 0, jetstream.ErrKeyNotFound
	case err != nil:
		return nil, 0, err
	case m.Header.Get("KV-Operation") != "": // a delete or purge marker
		return nil, 0, jetstream.ErrKeyNotFound
	}
	return m.Data, m.Sequence, nil
}

// Create stores v under key if the key has no value, and returns its
// revision; if it has one, the error wraps ErrConflict.
func (r *Repo[T]) Create(ctx context.Context, key string, v T) (uint64, error) {
	raw, err := r.encode(key, v)
	if err != nil {
		return 0, err
	}
	return r.create(ctx, key, raw)
}

// Update replaces the value of key read at revision rev with v, and returns
// the new revision; if the key changed since, the error wraps ErrConflict.
func (r *Repo[T]) Update(ctx context.Context, key string, v T, rev uint64) (uint64, error) {
	raw, err := r.encode(key, v)
	if err != nil {
		return 0, err
	}
	return r.update(ctx, key, raw, rev)
}

func (r *Repo[T]) encode(key string, v T) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s%s: %w", r.o.prefix, key, err)
	}
	return raw, nil
}

func (r *Repo[T]) create(ctx context.Context, key string, raw []byte) (rev uint64, err error) {
	k := r.o.prefix + key
	ctx, span := r.start(ctx, "create", k)
	defer func() { r.end(span, rev, err) }()
	rev, err = r.kv.Create(ctx, k, raw)
	// nats.go reports both codes of a refused create (10071, and 10164 of a
	// replicated bucket) as ErrKeyExists, but for a create over a deleted
	// key that loses its race on a replicated bucket: that one is a plain
	// error, and the next attempt finds the key.
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, r.conflict("create "+k, err)
	}
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", k, err)
	}
	return rev, nil
}

func (r *Repo[T]) update(ctx context.Context, key string, raw []byte, rev uint64) (next uint64, err error) {
	k := r.o.prefix + key
	ctx, span := r.start(ctx, "update", k)
	defer func() { r.end(span, next, err) }()
	next, err = r.kv.Update(ctx, k, raw, rev)
	// nats.go reports both codes of a refused compare-and-set (10071, and
	// 10164 of a replicated bucket) as ErrKeyRevisionMismatch.
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, r.conflict(fmt.Sprintf("update %s at revision %d", k, rev), err)
	}
	if err != nil {
		return 0, fmt.Errorf("update %s at revision %d: %w", k, rev, err)
	}
	return next, nil
}

// conflict is the error of a lost compare-and-set: ErrConflict, the
// caller's own conflict error (WithConflict) and nats.go's.
func (r *Repo[T]) conflict(what string, err error) error {
	if r.o.conflict != nil {
		return fmt.Errorf("%s: %w: %w: %w", what, r.o.conflict, ErrConflict, err)
	}
	return fmt.Errorf("%s: %w: %w", what, ErrConflict, err)
}

func (r *Repo[T]) start(ctx context.Context, op, key string) (context.Context, trace.Span) {
	return tracing.StartKV(ctx, r.o.scope, r.bucket, op, key)
}

func (r *Repo[T]) end(span trace.Span, rev uint64, err error) {
	tracing.EndKV(span, rev, err, ErrConflict, ErrNotFound)
}

// Option configures a Repo.
type Option func(*options) error

type options struct {
	prefix   string
	scope    string
	leader   *nats.Conn
	conflict error
	retry    Policy
}

// WithPrefix keeps the Repo's values under prefix+key ("stock."): its
// methods take the key without the prefix; spans name the whole key.
func WithPrefix(prefix string) Option {
	return func(o *options) error {
		if prefix == "" {
			return fmt.Errorf("empty key prefix: %w", ErrInvalidOption)
		}
		o.prefix = prefix
		return nil
	}
}

// WithTracer names the instrumentation scope of the Repo's spans, usually
// the package that owns the bucket (default: this package).
func WithTracer(scope string) Option {
	return func(o *options) error {
		if scope == "" {
			return fmt.Errorf("empty tracer name: %w", ErrInvalidOption)
		}
		o.scope = scope
		return nil
	}
}

// WithLeaderReads makes Get read through the leader of the bucket's
// stream, over nc, so a read reflects every write acknowledged before it;
// by default Get is a direct get, which a replica that lags may answer.
// Its spans are "kv leader_get <bucket>".
func WithLeaderReads(nc *nats.Conn) Option {
	return func(o *options) error {
		if nc == nil {
			return fmt.Errorf("leader reads: connection is nil: %w", ErrInvalidOption)
		}
		o.leader = nc
		return nil
	}
}

// WithConflict makes every ErrConflict of the Repo wrap err too: the
// domain's own conflict error, which its callers check.
func WithConflict(err error) Option {
	return func(o *options) error {
		if err == nil {
			return fmt.Errorf("conflict error is nil: %w", ErrInvalidOption)
		}
		o.conflict = err
		return nil
	}
}

// WithRetry bounds and paces the retries of Modify (default: DefaultPolicy).
// A Policy.Conflict given is ignored: Modify retries ErrConflict.
func WithRetry(p Policy) Option {
	return func(o *options) error {
		if err := p.Validate(); err != nil {
			return err
		}
		o.retry = p
		return nil
	}
}
