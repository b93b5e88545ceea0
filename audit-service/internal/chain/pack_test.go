package chain_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/eventshop/audit-service/internal/chain"
)

// TestPack: the entries of a commit are chained on the head in order, a
// record that makes no entry is left out without a gap, and the blocks are
// split by size; the stored blocks verify as one chain.
func TestPack(t *testing.T) {
	t.Parallel()
	recs := make([]chain.Record, 0, 9)
	for i := 1; i <= 9; i++ {
		recs = append(recs, record(i))
	}
	recs[3].Raw = []byte(`{"id":`) // not JSON
	one, err := chain.Next(chain.Genesis(), record(1), t0)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := chain.Encode(one)
	if err != nil {
		t.Fatal(err)
	}
	maxBytes := chain.BlockSize(3, 3*len(raw)+9) // room for three entries

	blocks, errs := chain.Pack(chain.Genesis(), recs, t0, maxBytes)
	if len(errs) != len(recs) || !errors.Is(errs[3], chain.ErrInvalidRecord) {
		t.Fatalf("errs = %v, want the fourth record refused as %v", errs, chain.ErrInvalidRecord)
	}
	var got []int
	v := chain.NewVerifier()
	for i, b := range blocks {
		if len(b.Data) > maxBytes {
			t.Errorf("block %d is %d bytes, over %d", i, len(b.Data), maxBytes)
		}
		if b.Seqs != chain.SeqsOf(b.Block.Entries).String() {
			t.Errorf("block %d: Seqs = %q", i, b.Seqs)
		}
		for j, k := range b.Recs {
			if e := b.Block.Entries[j]; e.EventID != recs[k].EventID {
				t.Errorf("block %d entry %d is %s, want record %d (%s)", i, j, e.EventID, k, recs[k].EventID)
			}
		}
		got = append(got, b.Recs...)
		v.Add(chain.BlockSubject, b.Seqs, b.Data, uint64(i+1))
	}
	if want := []int{0, 1, 2, 4, 5, 6, 7, 8}; !slices.Equal(got, want) {
		t.Fatalf("records packed = %v, want %v", got, want)
	}
	if len(blocks) != 3 {
		t.Fatalf("%d blocks, want 3 of at most three entries", len(blocks))
	}
	if res := v.Result(); !res.OK || res.Entries != 8 {
		t.Fatalf("verify = %+v, want a valid chain of 8 entries", res)
	}

	if blocks, errs := chain.Pack(chain.Genesis(), recs[:1], t0, 1<<20); errs != nil || len(blocks) != 1 {
		t.Fatalf("one valid record: %d blocks, errs %v", len(blocks), errs)
	}
}

// TestWindow: a block's events are known by id or, seen by headers only,
// by where they were read from, until the chain's recorded time moves a
// window past the block.
func TestWindow(t *testing.T) {
	t.Parallel()
	w := chain.NewWindow(time.Minute)
	e1, err := chain.Next(chain.Genesis(), record(1), t0)
	if err != nil {
		t.Fatal(err)
	}
	w.AddSeqs(t0, chain.Seqs{"INVENTORY": {{From: 7, To: 9}}})
	w.StartIDs(t0.Add(time.Second))
	w.AddEntries(t0.Add(time.Second), []chain.Entry{e1})

	if i, ok := w.Known(record(1)); !ok || i != 1 {
		t.Fatalf("Known(event 1) = %d, %v; want index 1", i, ok)
	}
	byPlace := chain.Record{EventID: "other", Stream: "INVENTORY", StreamSeq: 8}
	if i, ok := w.Known(byPlace); !ok || i != 0 || !w.Holds("INVENTORY", 8) {
		t.Fatalf("Known(INVENTORY:8) = %d, %v; want known by place", i, ok)
	}
	if !w.MayPredate(t0.Add(time.Second)) || w.MayPredate(t0.Add(time.Second+chain.ClockSkew)) {
		t.Fatal("MayPredate: only an event older than the ids remembered, less the clock skew, may predate them")
	}

	w.AddEntries(t0.Add(2*time.Minute), nil) // the chain moves on
	if _, ok := w.Known(record(1)); ok {
		t.Fatal("event 1 is still known two minutes of chain later")
	}
	if w.Holds("INVENTORY", 8) {
		t.Fatal("INVENTORY:8 is still held two minutes of chain later")
	}
	if !w.MayPredate(t0.Add(time.Minute)) {
		t.Fatal("an event from before the window may predate it")
	}
}
