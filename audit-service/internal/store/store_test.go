package store_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/eventshop/audit-service/internal/chain"
	"github.com/eventshop/audit-service/internal/store"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/trace"
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

// record is an event that no domain stream holds: enough for the chain.
// Its stream sequence is derived from its id: the same event is read from
// the same place, different events from different places.
func record(orderID string, i int) chain.Record {
	id := fmt.Sprintf("%s-e-%d", orderID, i)
	seq := fnv.New64a()
	seq.Write([]byte(id))
	return chain.Record{
		EventID: id, Type: "shop.order.created", Source: "order-service", OrderID: orderID,
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Time: time.Now(), Stream: events.StreamOrders, StreamSeq: seq.Sum64() >> 1,
		Raw: []byte(fmt.Sprintf(`{"id":%q,"subject":%q}`, id, orderID)),
	}
}

func newAppender(t *testing.T, js jetstream.JetStream, opts ...store.AppenderOption) *store.Appender {
	t.Helper()
	a, err := store.NewAppender(context.Background(), js, zap.NewNop(), opts...)
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

func msgs(t *testing.T, s jetstream.Stream) uint64 {
	t.Helper()
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// appendAll appends recs concurrently, so that they share blocks.
func appendAll(t *testing.T, a *store.Appender, recs []chain.Record) (dups int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, rec := range recs {
		wg.Go(func() {
			_, dup, err := a.Append(ctx, rec)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("append %s: %v", rec.EventID, err)
			}
			if dup {
				dups++
			}
		})
	}
	wg.Wait()
	return dups
}

// TestBlockExpectations pins the server behaviour the appender relies on:
// a publish expecting the stream's last sequence, or its last message id,
// is stored only if that holds.
func TestBlockExpectations(t *testing.T) {
	t.Parallel()
	_, js, s := auditStream(t)
	ctx := context.Background()
	publish := func(id string, opt jetstream.PublishOpt) error {
		_, err := js.PublishMsg(ctx, &nats.Msg{Subject: chain.BlockSubject, Data: []byte("x")}, jetstream.WithMsgID(id), opt)
		return err
	}
	isRefusal := func(err error) bool {
		var apiErr *jetstream.APIError
		return natsconn.IsWrongLastSequence(err) || (errors.As(err, &apiErr) && apiErr.ErrorCode == 10070)
	}
	tests := []struct {
		name       string
		id         string
		opt        jetstream.PublishOpt
		wantStored bool
	}{
		{name: "first block on the empty stream", id: "a", opt: jetstream.WithExpectLastSequence(0), wantStored: true},
		{name: "next block of the pipeline", id: "b", opt: jetstream.WithExpectLastMsgID("a"), wantStored: true},
		{name: "stale predecessor", id: "c", opt: jetstream.WithExpectLastMsgID("a")},
		{name: "stale head", id: "d", opt: jetstream.WithExpectLastSequence(1)},
		{name: "current head", id: "e", opt: jetstream.WithExpectLastSequence(2), wantStored: true},
	}
	for _, tt := range tests { // sequential: each case builds on the stream's state
		err := publish(tt.id, tt.opt)
		if tt.wantStored && err != nil {
			t.Fatalf("%s: publish = %v, want stored", tt.name, err)
		}
		if !tt.wantStored && !isRefusal(err) {
			t.Fatalf("%s: publish = %v, want a refusal", tt.name, err)
		}
	}
	if n := msgs(t, s); n != 3 {
		t.Fatalf("stream holds %d messages, want 3", n)
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
		t.Fatal("deleting an audit block succeeded")
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
	// (which loads the head block whole).
	for _, app := range []*store.Appender{a, newAppender(t, js)} {
		again, dup, err := app.Append(ctx, record("o-1", 1))
		if err != nil || !dup || again.Index != 1 {
			t.Fatalf("second append = %+v, dup=%v, %v; want the first entry as a duplicate", again, dup, err)
		}
	}
	if n := msgs(t, s); n != 1 {
		t.Fatalf("stream holds %d blocks, want 1", n)
	}
	next, _, err := a.Append(ctx, record("o-1", 2))
	if err != nil || next.Index != 2 || next.PrevHash != first.Hash {
		t.Fatalf("next append = %+v, %v", next, err)
	}
}

// TestRedeliveryAfterACrashIsADuplicate: the blocks are stored, the
// process dies before the consumers ack, and a new process (a new appender
// on the same stream) gets every event again. Each is stored once and
// reported a duplicate, whether it sits in the head block (loaded whole)
// or in an older block of the window (known by its header).
func TestRedeliveryAfterACrashIsADuplicate(t *testing.T) {
	t.Parallel()
	_, js, s := auditStream(t)
	a := newAppender(t, js)
	var recs []chain.Record
	for n := range 3 { // three rounds: at least three blocks
		var round []chain.Record
		for i := range 40 {
			round = append(round, record(fmt.Sprintf("o-%d", i%7), n*100+i+1))
		}
		if dups := appendAll(t, a, round); dups != 0 {
			t.Fatalf("round %d: %d duplicates in new events", n, dups)
		}
		recs = append(recs, round...)
	}
	blocks := msgs(t, s)
	if blocks < 3 || blocks >= uint64(len(recs)) {
		t.Fatalf("%d blocks for %d events", blocks, len(recs))
	}
	reg := prometheus.NewRegistry()
	m := store.NewMetrics(reg)
	restarted := newAppender(t, js, store.WithMetrics(m))
	if dups := appendAll(t, restarted, recs); dups != len(recs) {
		t.Fatalf("%d of %d redelivered events reported duplicate", dups, len(recs))
	}
	if n := msgs(t, s); n != blocks {
		t.Fatalf("stream holds %d blocks after the redelivery, want %d", n, blocks)
	}
	if res := verify(t, js); !res.OK || res.Entries != len(recs) {
		t.Fatalf("verify = %+v, want a valid chain of %d", res, len(recs))
	}
	if got := counter(t, reg, "eventshop_audit_duplicates_skipped_total"); got != float64(len(recs)) {
		t.Fatalf("duplicates metric = %v, want %d", got, len(recs))
	}
	// The chain goes on after the redelivery.
	e, dup, err := restarted.Append(context.Background(), record("o-new", 1))
	if err != nil || dup || e.Index != uint64(len(recs)+1) {
		t.Fatalf("append after the redelivery = %+v, %v, %v", e, dup, err)
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
	// And it learnt the other writer's event on the way.
	if e, dup, err := a.Append(ctx, record("o-2", 1)); err != nil || !dup || e.Index != 4 {
		t.Fatalf("the other writer's event again = %+v, %v, %v; want a duplicate at 4", e, dup, err)
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
	res := verify(t, js)
	if !res.OK || res.Entries != want {
		t.Fatalf("verify = %+v, want a valid chain of %d", res, want)
	}
	if n := msgs(t, s); n != uint64(res.Blocks) || n > want {
		t.Fatalf("stream holds %d blocks for %d entries (verify saw %d)", n, want, res.Blocks)
	}
}

// TestConcurrentAppendsShareBlocks: appends that arrive together are
// stored as one block (one message, one round trip), events already
// audited — before or in the same commit — are reported as duplicates and
// stored once, and the chain verifies.
func TestConcurrentAppendsShareBlocks(t *testing.T) {
	t.Parallel()
	_, js, s := auditStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := prometheus.NewRegistry()
	m := store.NewMetrics(reg)
	a := newAppender(t, js, store.WithMetrics(m))
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
				if e.Index == 0 {
					errs <- fmt.Errorf("event %d copy %d: no index %+v", n, copyN, e)
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
	res := verify(t, js)
	if !res.OK || res.Entries != events {
		t.Fatalf("verify = %+v, want a valid chain of %d", res, events)
	}
	blocks := msgs(t, s)
	h := histogram(t, reg, "eventshop_audit_block_entries")
	if blocks >= events-early+early || h.GetSampleCount() != blocks || h.GetSampleSum() != events {
		t.Fatalf("%d blocks (metric: %d blocks, %v entries) for %d entries: appends were not written together",
			blocks, h.GetSampleCount(), h.GetSampleSum(), events)
	}
	if c := histogram(t, reg, "eventshop_audit_pipeline_entries"); c.GetSampleSum() != events {
		t.Fatalf("group commits wrote %v entries, want %d", c.GetSampleSum(), events)
	}
	t.Logf("%d blocks for %d entries", blocks, events)
}

// TestAppendsWithinTheBlockIntervalShareABlock: after a commit, the next
// one waits out the block interval, and everything that arrived meanwhile
// is one block; an append after a quiet interval is written at once.
func TestAppendsWithinTheBlockIntervalShareABlock(t *testing.T) {
	t.Parallel()
	_, js, s := auditStream(t)
	ctx := context.Background()
	a := newAppender(t, js, store.WithBlockInterval(time.Second))
	if _, _, err := a.Append(ctx, record("o-1", 0)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for n := 1; n <= 30; n++ {
		wg.Go(func() {
			if _, _, err := a.Append(ctx, record("o-1", n)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := msgs(t, s); got != 2 {
		t.Fatalf("%d blocks for 31 appends, want 2: the first at once, the other 30 together", got)
	}
	if res := verify(t, js); !res.OK || res.Entries != 31 {
		t.Fatalf("verify = %+v, want a valid chain of 31", res)
	}
	if _, err := store.NewAppender(ctx, js, zap.NewNop(), store.WithBlockInterval(-time.Millisecond)); !errors.Is(err, store.ErrInvalidOption) {
		t.Fatalf("a negative interval: err = %v, want ErrInvalidOption", err)
	}
}

// TestLargeCommitIsSplitIntoBlocks: a group commit larger than the block
// size is stored as several blocks, each within the size, chained.
func TestLargeCommitIsSplitIntoBlocks(t *testing.T) {
	t.Parallel()
	_, js, s := auditStream(t)
	const maxBytes = 8 << 10
	a := newAppender(t, js, store.WithMaxBlockBytes(maxBytes))
	var recs []chain.Record
	for i := range 200 {
		recs = append(recs, record("o-big", i+1))
	}
	if dups := appendAll(t, a, recs); dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
	res := verify(t, js)
	if !res.OK || res.Entries != len(recs) || res.Blocks < 200*200/maxBytes {
		t.Fatalf("verify = %+v, want a valid chain of %d entries in several blocks", res, len(recs))
	}
	for seq := uint64(1); seq <= uint64(res.Blocks); seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Data) > maxBytes {
			t.Fatalf("block %d holds %d bytes, more than %d", seq, len(m.Data), maxBytes)
		}
	}
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
	if _, err := js.Publish(ctx, chain.BlockSubject, []byte("not a block")); err != nil {
		t.Fatal(err)
	}
	b := newAppender(t, js)
	if h := b.Head(); h.Index != 1 || h.Hash != first.Hash || h.Seq != 2 {
		t.Fatalf("head = %+v, want the last decodable block and the true last sequence", h)
	}
	e, _, err := b.Append(ctx, record("o-1", 2))
	if err != nil || e.Index != 2 || e.PrevHash != first.Hash {
		t.Fatalf("append after junk = %+v, %v", e, err)
	}
	res := verify(t, js)
	if res.OK || res.FirstBroken == nil || res.FirstBroken.StreamSeq != 2 || res.Entries != 2 || res.Blocks != 3 {
		t.Fatalf("verify = %+v, want the junk at seq 2 reported", res)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return metric(t, reg, name).GetCounter().GetValue()
}

func histogram(t *testing.T, reg *prometheus.Registry, name string) *dto.Histogram {
	t.Helper()
	return metric(t, reg, name).GetHistogram()
}

func metric(t *testing.T, reg *prometheus.Registry, name string) *dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0]
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// domain is a NATS server with the domain streams and the audit stream,
// and publishers standing in for the services.
type domain struct {
	js   jetstream.JetStream
	pubs map[string]*events.Publisher
}

func newDomain(t *testing.T) *domain {
	t.Helper()
	_, js, _ := auditStream(t)
	d := &domain{js: js, pubs: map[string]*events.Publisher{}}
	for _, s := range events.DomainStreams {
		if _, err := events.EnsureStream(context.Background(), js, s, events.StreamOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, src := range []string{"order-service", "inventory-service", "payment-service", "notification-service"} {
		p, err := events.NewPublisher(js, src)
		if err != nil {
			t.Fatal(err)
		}
		d.pubs[src] = p
	}
	return d
}

// saga publishes an order's five events, one per step, and returns them
// as the audit consumers would read them.
func (d *domain) saga(t *testing.T, orderID string) []chain.Record {
	t.Helper()
	ctx := context.Background()
	tp := trace.New().String()
	steps := []struct {
		src    string
		stream string
		typ    events.Type
		data   any
	}{
		{"order-service", events.StreamOrders, events.OrderCreated, events.OrderCreatedData{OrderID: orderID, CustomerID: "c-1",
			Items: []events.Item{{SKU: "SKU-1", Quantity: 2}}, PaymentToken: "tok_visa", CreatedAt: time.Now().UTC()}},
		{"inventory-service", events.StreamInventory, events.InventoryReserved, events.InventoryReservedData{OrderID: orderID,
			Lines:      []events.PricedLine{{SKU: "SKU-1", Name: "Mug", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: 2598}},
			TotalCents: 2598, Currency: "EUR"}},
		{"payment-service", events.StreamPayments, events.PaymentSucceeded, events.PaymentSucceededData{OrderID: orderID, ChargeID: "ch_1", AmountCents: 2598, Currency: "EUR"}},
		{"order-service", events.StreamOrders, events.OrderConfirmed, events.OrderConfirmedData{OrderID: orderID, CustomerID: "c-1", TotalCents: 2598, Currency: "EUR"}},
		{"notification-service", events.StreamNotifications, events.NotificationSent, events.NotificationSentData{OrderID: orderID, NotificationID: "n-1", Kind: "order_confirmed", Channel: "log"}},
	}
	var out []chain.Record
	for _, s := range steps {
		p, err := d.pubs[s.src].Publish(ctx, s.typ, orderID, trace.Child(tp).String(), s.data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d.read(t, s.stream, p.Sequence))
	}
	return out
}

// read returns the event stored at seq of stream as the audit consumer
// hands it to the appender.
func (d *domain) read(t *testing.T, stream string, seq uint64) chain.Record {
	t.Helper()
	ctx := context.Background()
	s, err := d.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	env, err := events.Decode(m.Subject, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	red, err := chain.NewRedactor([]byte("store-test-fingerprint-key-32-bytes"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := red.Redact(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	return chain.Record{EventID: env.ID, Type: string(env.Type), Source: env.Source, OrderID: env.Subject,
		TraceID: env.TraceID(), Time: env.Time, Stream: stream, StreamSeq: seq, Subject: m.Subject, Raw: raw}
}

// republish stores rec's event again on its subject, as a new message (a
// copy, as the chaos tool makes), and returns the copy as read.
func (d *domain) republish(t *testing.T, rec chain.Record) chain.Record {
	t.Helper()
	ctx := context.Background()
	s, err := d.js.Stream(ctx, rec.Stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, rec.StreamSeq)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := d.js.Publish(ctx, m.Subject, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	return d.read(t, rec.Stream, ack.Sequence)
}
