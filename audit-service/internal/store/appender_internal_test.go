package store

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/audit-service/internal/chain"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
)

// TestBatchIsWrittenThoughItsWriterGaveUp: the caller whose Append writes
// the group commit gives up (its context ends) while another caller's
// append waits in the same batch; the other append is stored all the same,
// and so is the writer's own.
func TestBatchIsWrittenThoughItsWriterGaveUp(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if _, err := events.EnsureStream(ctx, js, events.StreamAudit, events.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	a, err := NewAppender(ctx, js, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	// The next writer waits for the block interval until its caller gives
	// up: meanwhile the other append joins its batch.
	a.blockInterval, a.lastCommit = time.Hour, time.Now()
	queued := func() int {
		a.qmu.Lock()
		defer a.qmu.Unlock()
		return len(a.queue)
	}

	record := func(id string, seq uint64) chain.Record {
		return chain.Record{EventID: id, Type: "shop.order.created", Source: "order-service", OrderID: "o-1",
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Time: time.Now(), Stream: events.StreamOrders, StreamSeq: seq,
			Raw: []byte(`{"id":"` + id + `"}`)}
	}
	gaveUp, giveUp := context.WithCancel(ctx)
	defer giveUp()
	writer := make(chan error, 1)
	go func() {
		_, _, err := a.Append(gaveUp, record("e-writer", 1))
		writer <- err
	}()
	natstest.Eventually(t, "the first append to hold the writer", func() bool {
		if queued() != 1 {
			return false
		}
		if a.mu.TryLock() {
			a.mu.Unlock() // queued, not yet the writer
			return false
		}
		return true
	})
	other := make(chan error, 1)
	go func() {
		_, _, err := a.Append(ctx, record("e-other", 2))
		other <- err
	}()
	natstest.Eventually(t, "the second append to join the batch", func() bool { return queued() == 2 })

	giveUp()
	if err := <-other; err != nil {
		t.Fatalf("the append waiting in the batch failed because the writer's caller gave up: %v", err)
	}
	if err := <-writer; err != nil {
		t.Fatalf("the writer's own append: %v", err)
	}
	res, err := NewReader(js, zap.NewNop()).Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Entries != 2 {
		t.Fatalf("verify = %+v, want a valid chain of 2 entries", res)
	}
}
