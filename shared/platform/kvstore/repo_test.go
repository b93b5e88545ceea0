package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventshop/shared/platform/kvstore"
	"github.com/eventshop/shared/platform/natstest"
)

// item is what the tests store.
type item struct {
	Name    string   `json:"name"`
	Count   int      `json:"count"`
	Applied []string `json:"applied,omitempty"`
}

// bucket starts a server and returns a bucket on it, and the connection.
func bucket(t *testing.T) (jetstream.KeyValue, *nats.Conn) {
	t.Helper()
	srv := natstest.Start(t)
	nc, js := natstest.Connect(t, srv)
	kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "things"})
	if err != nil {
		t.Fatal(err)
	}
	return kv, nc
}

func newRepo(t *testing.T, kv jetstream.KeyValue, opts ...kvstore.Option) *kvstore.Repo[item] {
	t.Helper()
	r, err := kvstore.New[item](kv, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// errDomain stands for a domain's own conflict error (WithConflict).
var errDomain = errors.New("thing changed concurrently")

// TestRepoCompareAndSet: each write expects what it was told, and the
// answers that are not failures say so in the repo's own errors, with
// nats.go's beside them.
func TestRepoCompareAndSet(t *testing.T) {
	t.Parallel()
	kv, nc := bucket(t)
	ctx := context.Background()
	plain := newRepo(t, kv, kvstore.WithPrefix("thing."))
	leader := newRepo(t, kv, kvstore.WithPrefix("thing."), kvstore.WithLeaderReads(nc), kvstore.WithConflict(errDomain))

	for _, r := range []*kvstore.Repo[item]{plain, leader} {
		if _, _, err := r.Get(ctx, "a"); !errors.Is(err, kvstore.ErrNotFound) || !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatalf("Get of a missing key = %v, want ErrNotFound", err)
		}
	}
	rev, err := plain.Create(ctx, "a", item{Name: "a", Count: 1})
	if err != nil || rev == 0 {
		t.Fatalf("Create = %d, %v", rev, err)
	}
	if e, err := kv.Get(ctx, "thing.a"); err != nil || e.Revision() != rev {
		t.Fatalf("the key in the bucket: %v, %v; want thing.a at %d", e, err, rev)
	}
	next, err := plain.Update(ctx, "a", item{Name: "a", Count: 2}, rev)
	if err != nil || next <= rev {
		t.Fatalf("Update = %d, %v", next, err)
	}

	tests := []struct {
		name      string
		write     func(r *kvstore.Repo[item]) error
		wantErr   []error
		notWanted error
	}{
		{name: "create of a written key", write: func(r *kvstore.Repo[item]) error {
			_, err := r.Create(ctx, "a", item{Name: "again"})
			return err
		}, wantErr: []error{kvstore.ErrConflict, jetstream.ErrKeyExists}},
		{name: "update at a stale revision", write: func(r *kvstore.Repo[item]) error {
			_, err := r.Update(ctx, "a", item{Name: "stale"}, rev)
			return err
		}, wantErr: []error{kvstore.ErrConflict, jetstream.ErrKeyRevisionMismatch}},
		{name: "update of a missing key", write: func(r *kvstore.Repo[item]) error {
			_, err := r.Update(ctx, "b", item{Name: "b"}, 1)
			return err
		}, wantErr: []error{kvstore.ErrConflict}},
	}
	for _, tt := range tests {
		for _, r := range []*kvstore.Repo[item]{plain, leader} {
			err := tt.write(r)
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("%s: %v, want it to wrap %v", tt.name, err, want)
				}
			}
			if got := errors.Is(err, errDomain); got != (r == leader) {
				t.Errorf("%s: wraps the domain's conflict: %v, want %v (WithConflict)", tt.name, got, r == leader)
			}
		}
	}
	for _, r := range []*kvstore.Repo[item]{plain, leader} {
		if got, at, err := r.Get(ctx, "a"); err != nil || got.Count != 2 || at != next {
			t.Fatalf("after the refused writes: %+v @%d, %v; want count 2 @%d", got, at, err, next)
		}
	}

	// A value that is not the type's reads as corrupt; a deleted key as missing.
	if _, err := kv.Put(ctx, "thing.bad", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "thing.a"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*kvstore.Repo[item]{plain, leader} {
		if _, _, err := r.Get(ctx, "bad"); !errors.Is(err, kvstore.ErrCorrupt) {
			t.Errorf("Get of garbage = %v, want ErrCorrupt", err)
		}
		if _, _, err := r.Get(ctx, "a"); !errors.Is(err, kvstore.ErrNotFound) {
			t.Errorf("Get of a deleted key = %v, want ErrNotFound", err)
		}
	}
	if _, err := plain.Create(ctx, "a", item{Name: "reborn"}); err != nil {
		t.Fatalf("Create over a deleted key: %v", err)
	}
}

func TestNewRefusesInvalidOptions(t *testing.T) {
	t.Parallel()
	kv, _ := bucket(t)
	tests := []struct {
		name string
		opt  kvstore.Option
	}{
		{"empty prefix", kvstore.WithPrefix("")},
		{"empty tracer", kvstore.WithTracer("")},
		{"no connection", kvstore.WithLeaderReads(nil)},
		{"no conflict error", kvstore.WithConflict(nil)},
		{"negative attempts", kvstore.WithRetry(kvstore.Policy{Attempts: -1})},
		{"max below initial", kvstore.WithRetry(kvstore.Policy{Initial: 10, Max: 5})},
	}
	for _, tt := range tests {
		if _, err := kvstore.New[item](kv, tt.opt); !errors.Is(err, kvstore.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", tt.name, err)
		}
	}
	if _, err := kvstore.New[item](nil); !errors.Is(err, kvstore.ErrInvalidOption) {
		t.Errorf("nil bucket: %v, want ErrInvalidOption", err)
	}
}

// TestConcurrentModifiersAllLandOnce: writers racing on one key each land
// their change exactly once, however often they lose a compare-and-set.
func TestConcurrentModifiersAllLandOnce(t *testing.T) {
	t.Parallel()
	kv, _ := bucket(t)
	const writers, changes = 8, 10
	// Each lost compare-and-set is another writer's success, so no change
	// can lose more often than there are changes in all.
	r := newRepo(t, kv, kvstore.WithRetry(kvstore.Policy{Attempts: writers * changes}))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, writers*changes)
	for w := range writers {
		wg.Go(func() {
			for c := range changes {
				id := fmt.Sprintf("%d-%d", w, c)
				_, _, err := r.Modify(ctx, "counter", func(v *item, _ uint64) error {
					v.Count++
					v.Applied = append(v.Applied, id)
					return nil
				})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Modify: %v", err)
		}
	}
	got, _, err := r.Get(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got.Applied)
	if got.Count != writers*changes || len(slices.Compact(got.Applied)) != writers*changes {
		t.Fatalf("count %d, %d distinct changes applied; want %d of each", got.Count, len(slices.Compact(got.Applied)), writers*changes)
	}
}

// TestModifyIsBounded: a key another writer changes between every read and
// write of Modify makes it give up after the policy's attempts with
// ErrConflict, and a ctx that ends while it waits stops it at once.
func TestModifyIsBounded(t *testing.T) {
	t.Parallel()
	kv, _ := bucket(t)
	ctx := context.Background()
	if _, err := kv.Put(ctx, "busy", []byte(`{"name":"busy"}`)); err != nil {
		t.Fatal(err)
	}
	// interfere is another writer, between Modify's read and its write.
	interfere := func(t *testing.T) {
		if _, err := kv.Put(ctx, "busy", []byte(`{"name":"busy"}`)); err != nil {
			t.Error(err)
		}
	}

	t.Run("attempts", func(t *testing.T) {
		r := newRepo(t, kv, kvstore.WithRetry(kvstore.Policy{Attempts: 5}), kvstore.WithConflict(errDomain))
		calls := 0
		_, _, err := r.Modify(ctx, "busy", func(v *item, _ uint64) error {
			calls++
			interfere(t)
			v.Count++
			return nil
		})
		if !errors.Is(err, kvstore.ErrConflict) || !errors.Is(err, errDomain) || calls != 5 {
			t.Fatalf("Modify = %v after %d attempts, want ErrConflict after 5", err, calls)
		}
	})
	t.Run("ctx", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		// A retry waits an hour unless ctx ends, which the first conflict does.
		r := newRepo(t, kv, kvstore.WithRetry(kvstore.Policy{Initial: time.Hour, OnRetry: func(error) { cancel() }}))
		calls := 0
		_, _, err := r.Modify(cctx, "busy", func(v *item, _ uint64) error {
			calls++
			interfere(t)
			v.Count++
			return nil
		})
		if !errors.Is(err, context.Canceled) || !errors.Is(err, kvstore.ErrConflict) || calls != 1 {
			t.Fatalf("Modify = %v after %d attempts, want context.Canceled after 1", err, calls)
		}
	})
}

// TestModify: Modify creates a missing key, writes only a change, and
// returns change's own error without writing; ModifyFrom starts from the
// value given and reads again only when that one is stale.
func TestModify(t *testing.T) {
	t.Parallel()
	kv, _ := bucket(t)
	r := newRepo(t, kv, kvstore.WithPrefix("thing."))
	ctx := context.Background()
	errNo := errors.New("refused")
	inc := func(v *item, _ uint64) error { v.Count++; return nil }

	created, rev, err := r.Modify(ctx, "m", func(v *item, rev uint64) error {
		if rev != 0 || v.Name != "" {
			return fmt.Errorf("a missing key read as %+v @%d", v, rev)
		}
		v.Name = "m"
		return nil
	})
	if err != nil || created.Name != "m" || rev == 0 {
		t.Fatalf("Modify of a missing key = %+v @%d, %v", created, rev, err)
	}
	same, at, err := r.Modify(ctx, "m", func(*item, uint64) error { return nil })
	if err != nil || at != rev || same.Name != "m" {
		t.Fatalf("Modify that changes nothing = %+v @%d, %v; want the value read @%d, nothing written", same, at, err, rev)
	}
	if _, _, err := r.Modify(ctx, "m", func(*item, uint64) error { return errNo }); !errors.Is(err, errNo) {
		t.Fatalf("Modify whose change fails = %v, want its error", err)
	}
	if _, now, _ := r.Get(ctx, "m"); now != rev {
		t.Fatalf("revision %d after a change that wrote nothing, want %d", now, rev)
	}

	// ModifyFrom at the current revision writes without reading; from a
	// stale one it reads and applies change to the stored value.
	v, next, err := r.ModifyFrom(ctx, "m", created, rev, inc)
	if err != nil || v.Count != 1 || next <= rev {
		t.Fatalf("ModifyFrom = %+v @%d, %v", v, next, err)
	}
	stale := created
	stale.Name = "stale"
	v, last, err := r.ModifyFrom(ctx, "m", stale, rev, inc)
	if err != nil || v.Count != 2 || v.Name != "m" || last <= next {
		t.Fatalf("ModifyFrom a stale value = %+v @%d, %v; want the stored one counted again", v, last, err)
	}
}

// TestRepoSpans: inside a recorded span every operation is a CLIENT child
// naming the bucket, the key and what it found; a missing key and a lost
// compare-and-set are answers, not failures. Outside one, no span starts.
func TestRepoSpans(t *testing.T) {
	t.Parallel()
	kv, _ := bucket(t)
	r := newRepo(t, kv, kvstore.WithPrefix("thing."), kvstore.WithTracer("test/store"))
	rec := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))

	off, offSpan := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(rec)).
		Tracer("test").Start(context.Background(), "handler")
	if _, err := r.Create(off, "z", item{}); err != nil {
		t.Fatal(err)
	}
	offSpan.End()
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("%d spans recorded outside a recording span, want 0", n)
	}

	ctx, handler := provider.Tracer("test").Start(context.Background(), "handler")
	_, _, _ = r.Get(ctx, "a")                        // missing
	rev, _ := r.Create(ctx, "a", item{})             // written
	_, _ = r.Create(ctx, "a", item{})                // lost
	_, _ = r.Update(ctx, "a", item{Count: 1}, rev+7) // lost
	handler.End()

	wants := []struct {
		name  string
		attrs map[attribute.Key]string
	}{
		{"kv get things", map[attribute.Key]string{"db.namespace": "things", "db.operation.name": "get", "nats.kv.key": "thing.a", "nats.kv.not_found": "true"}},
		{"kv create things", map[attribute.Key]string{"nats.kv.key": "thing.a", "nats.kv.revision": fmt.Sprint(rev)}},
		{"kv create things", map[attribute.Key]string{"nats.kv.conflict": "true"}},
		{"kv update things", map[attribute.Key]string{"nats.kv.conflict": "true"}},
	}
	spans := rec.Ended()
	if len(spans) != len(wants)+1 {
		t.Fatalf("%d spans, want %d children and the handler's", len(spans), len(wants))
	}
	for i, w := range wants {
		s := spans[i]
		if s.Name() != w.name || s.SpanKind() != trace.SpanKindClient || s.Parent().SpanID() != handler.SpanContext().SpanID() ||
			s.InstrumentationScope().Name != "test/store" || s.Status().Code != 0 {
			t.Errorf("span %d: %q kind %s scope %s status %v, want %q, a CLIENT child of the handler's, scope test/store, status unset",
				i, s.Name(), s.SpanKind(), s.InstrumentationScope().Name, s.Status(), w.name)
			continue
		}
		got := map[attribute.Key]string{}
		for _, kv := range s.Attributes() {
			got[kv.Key] = kv.Value.Emit()
		}
		for k, v := range w.attrs {
			if got[k] != v {
				t.Errorf("span %d %s: %s = %q, want %q", i, s.Name(), k, got[k], v)
			}
		}
	}
}
