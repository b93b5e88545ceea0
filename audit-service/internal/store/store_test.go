package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eventshop/audit-service/internal/chain"
	"github.com/eventshop/audit-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
)

func auditStream(t *testing.T) (*natstest.Server, jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	s, err := events.EnsureStream(context.Background(), js, events.StreamAudit, events.StreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return srv, js, s
}

func record(orderID string, i int) chain.Record {
	id := fmt.Sprintf("%s-e-%d", orderID, i)
	return chain.Record{
		EventID: id, Type: "shop.order.created", Source: "order-service", OrderID: orderID,
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Stream: events.StreamOrders, StreamSeq: uint64(i),
		Raw: []byte(fmt.Sprintf(`{"id":%q,"subject":%q}`, id, orderID)),
	}
}

func newAppender(t *testing.T, js jetstream.JetStream) *store.Appender {
	t.Helper()
	a, err := store.NewAppender(context.Background(), js, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func verify(t *testing.T, js jetstream.JetStream) chain.Result {
	t.Helper()
	res, err := store.NewReader(js, zap.NewNop()).Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestExpectationHeadersCombine pins the server behaviour the appender
// relies on: a publish carrying both Nats-Expected-Last-Sequence and
// Nats-Expected-Last-Subject-Sequence is stored only if both hold.
func TestExpectationHeadersCombine(t *testing.T) {
	t.Parallel()
	_, js, s := auditStream(t)
	ctx := context.Background()
	publish := func(subject string, lastSeq, lastSubjSeq uint64) error {
		_, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: []byte("x")},
			jetstream.WithExpectLastSequence(lastSeq), jetstream.WithExpectLastSequencePerSubject(lastSubjSeq))
		return err
	}
	// Seed: audit.o-1.a at seq 1 (an empty stream's last sequence is 0).
	if err := publish("audit.o-1.a", 0, 0); err != nil {
		t.Fatalf("first publish: %v", err)
	}
	tests := []struct {
		name        string
		subject     string
		lastSeq     uint64
		lastSubjSeq uint64
		wantStored  bool
	}{
		{name: "both hold", subject: "audit.o-1.b", lastSeq: 1, lastSubjSeq: 0, wantStored: true},
		{name: "stale stream sequence", subject: "audit.o-1.c", lastSeq: 1, lastSubjSeq: 0},
		{name: "subject already written", subject: "audit.o-1.a", lastSeq: 2, lastSubjSeq: 0},
		{name: "both wrong", subject: "audit.o-1.b", lastSeq: 1, lastSubjSeq: 0},
		{name: "both hold again", subject: "audit.o-1.c", lastSeq: 2, lastSubjSeq: 0, wantStored: true},
	}
	for _, tt := range tests { // sequential: each case builds on the stream's state
		err := publish(tt.subject, tt.lastSeq, tt.lastSubjSeq)
		if tt.wantStored && err != nil {
			t.Fatalf("%s: publish = %v, want stored", tt.name, err)
		}
		if !tt.wantStored && !events.IsWrongLastSequence(err) {
			t.Fatalf("%s: publish = %v, want a wrong-last-sequence refusal", tt.name, err)
		}
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 || info.State.LastSeq != 3 {
		t.Fatalf("stream holds %d messages up to seq %d, want 3 / 3", info.State.Msgs, info.State.LastSeq)
	}
}

func TestAuditStreamIsAppendOnly(t *testing.T) {
	t.Parallel()
	_, js, s := auditStream(t)
	ctx := context.Background()
	if _, _, err := newAppender(t, js).Append(ctx, record("o-1", 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctx, 1); err == nil {
		t.Fatal("deleting an audit entry succeeded")
	}
	if err := s.Purge(ctx); err == nil {
		t.Fatal("purging the audit stream succeeded")
	}
}

func TestAppendTwiceIsOneEntry(t *testing.T) {
	t.Parallel()
	_, js, s := auditStream(t)
	ctx := context.Background()
	a := newAppender(t, js)
	first, dup, err := a.Append(ctx, record("o-1", 1))
	if err != nil || dup || first.Index != 1 || first.PrevHash != chain.GenesisHash {
		t.Fatalf("first append = %+v, %v, %v", first, dup, err)
	}
	// The same event again, from the same appender and from a fresh one
	// (whose head is current, so only the subject expectation refuses).
	for _, app := range []*store.Appender{a, newAppender(t, js)} {
		again, dup, err := app.Append(ctx, record("o-1", 1))
		if err != nil || !dup || again.Hash != first.Hash || again.Index != 1 {
			t.Fatalf("second append = %+v, dup=%v, %v; want the first entry as a duplicate", again, dup, err)
		}
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d entries, want 1", info.State.Msgs)
	}
	next, _, err := a.Append(ctx, record("o-1", 2))
	if err != nil || next.Index != 2 || next.PrevHash != first.Hash {
		t.Fatalf("next append = %+v, %v", next, err)
	}
}

func TestNewAppenderContinuesTheChain(t *testing.T) {
	t.Parallel()
	_, js, _ := auditStream(t)
	ctx := context.Background()
	a := newAppender(t, js)
	var last chain.Entry
	for i := 1; i <= 3; i++ {
		var err error
		if last, _, err = a.Append(ctx, record("o-1", i)); err != nil {
			t.Fatal(err)
		}
	}
	b := newAppender(t, js)
	if h := b.Head(); h.Index != 3 || h.Hash != last.Hash || h.Seq != 3 {
		t.Fatalf("loaded head = %+v, want index 3 at seq 3 with hash %s", h, last.Hash)
	}
	e, _, err := b.Append(ctx, record("o-2", 1))
	if err != nil || e.Index != 4 || e.PrevHash != last.Hash {
		t.Fatalf("append after reload = %+v, %v", e, err)
	}
	// The first appender's head is stale now; it must notice and continue.
	e, _, err = a.Append(ctx, record("o-2", 2))
	if err != nil || e.Index != 5 {
		t.Fatalf("append from the stale appender = %+v, %v", e, err)
	}
	if res := verify(t, js); !res.OK || res.Entries != 5 || res.Head != e.Hash {
		t.Fatalf("verify = %+v", res)
	}
}

func TestRacingAppendersBuildOneLinearChain(t *testing.T) {
	t.Parallel()
	srv, js, s := auditStream(t)
	_, js2 := natstest.Connect(t, srv) // a second "instance" on its own connection
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	apps := []*store.Appender{newAppender(t, js), newAppender(t, js2)}
	const perApp, shared = 25, 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*(perApp+shared))
	for i, app := range apps {
		for n := range perApp + shared { // each instance appends concurrently too
			wg.Go(func() {
				rec := record(fmt.Sprintf("o-%d", i), n)
				if n >= perApp {
					rec = record("o-shared", n) // both instances see these events
				}
				if _, _, err := app.Append(ctx, rec); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("append: %v", err)
	}
	const want = 2*perApp + shared
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != want {
		t.Fatalf("stream holds %d entries, want %d", info.State.Msgs, want)
	}
	res := verify(t, js)
	if !res.OK || res.Entries != want {
		t.Fatalf("verify = %+v, want a valid chain of %d", res, want)
	}
}

// TestConcurrentAppendsSharePipelines: appends that arrive together are
// written as pipelines of several entries (one round trip each), events
// already audited — before or inside the same pipeline — are reported as
// duplicates and stored once, and the chain verifies.
func TestConcurrentAppendsSharePipelines(t *testing.T) {
	t.Parallel()
	_, js, s := auditStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := prometheus.NewRegistry()
	m, err := store.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := store.NewAppender(ctx, js, zap.NewNop(), store.WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	const events, early = 300, 20
	for n := range early { // audited before: their second append is a duplicate
		if _, _, err := a.Append(ctx, record("o-1", n)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var dups sync.Map
	errs := make(chan error, 2*events)
	for n := range events {
		for copyN := range 2 { // every event twice, at the same time
			wg.Go(func() {
				e, dup, err := a.Append(ctx, record("o-1", n))
				if err != nil {
					errs <- err
					return
				}
				if e.Index == 0 || e.Hash == "" {
					errs <- fmt.Errorf("event %d copy %d: empty entry %+v", n, copyN, e)
				}
				if dup {
					if _, loaded := dups.LoadOrStore(fmt.Sprint(n, "/", copyN), true); loaded {
						errs <- fmt.Errorf("event %d copy %d reported twice", n, copyN)
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ndups := 0
	dups.Range(func(_, _ any) bool { ndups++; return true })
	// One copy of each event is a duplicate; both copies of the early ones.
	if ndups != events+early {
		t.Fatalf("%d appends reported a duplicate, want %d", ndups, events+early)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != events {
		t.Fatalf("stream holds %d entries, want %d", info.State.Msgs, events)
	}
	if res := verify(t, js); !res.OK || res.Entries != events {
		t.Fatalf("verify = %+v, want a valid chain of %d", res, events)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "eventshop_audit_pipeline_entries" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() >= uint64(events) {
			t.Fatalf("%d pipelines for %d new entries: appends were not written together", h.GetSampleCount(), events-early)
		}
		t.Logf("%d pipelines, %.0f entries published", h.GetSampleCount(), h.GetSampleSum())
		return
	}
	t.Fatal("no pipeline metric")
}

func TestJunkAtTheHeadIsReportedNotFatal(t *testing.T) {
	t.Parallel()
	_, js, _ := auditStream(t)
	ctx := context.Background()
	a := newAppender(t, js)
	first, _, err := a.Append(ctx, record("o-1", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "audit.o-1.junk", []byte("not an entry")); err != nil {
		t.Fatal(err)
	}
	b := newAppender(t, js)
	if h := b.Head(); h.Index != 1 || h.Hash != first.Hash || h.Seq != 2 {
		t.Fatalf("head = %+v, want the last decodable entry and the true last sequence", h)
	}
	e, _, err := b.Append(ctx, record("o-1", 2))
	if err != nil || e.Index != 2 || e.PrevHash != first.Hash {
		t.Fatalf("append after junk = %+v, %v", e, err)
	}
	res := verify(t, js)
	if res.OK || res.FirstBroken == nil || res.FirstBroken.StreamSeq != 2 || res.Entries != 3 {
		t.Fatalf("verify = %+v, want the junk at seq 2 reported", res)
	}
}

func TestTimeline(t *testing.T) {
	t.Parallel()
	_, js, _ := auditStream(t)
	ctx := context.Background()
	a := newAppender(t, js)
	for i := 1; i <= 3; i++ {
		for _, o := range []string{"o-1", "o-2"} {
			if _, _, err := a.Append(ctx, record(o, i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := store.NewReader(js, zap.NewNop())
	got, err := r.Timeline(ctx, "o-2")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("timeline has %d entries, want 3", len(got))
	}
	for i, e := range got {
		if e.OrderID != "o-2" || e.EventID != fmt.Sprintf("o-2-e-%d", i+1) || e.Index != uint64(2*(i+1)) {
			t.Fatalf("entry %d = %+v", i, e)
		}
	}
	if _, err := r.Timeline(ctx, "o-none"); err == nil {
		t.Fatal("timeline of an unknown order succeeded")
	}
}
