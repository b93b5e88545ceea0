package store

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/eventshop/audit-service/internal/chain"
)

// recent remembers which events the blocks of the last window of the chain
// audited, so that an event delivered again is not appended again.
//
// A block written or read whole by this process is remembered by its
// entries' event ids; a block seen at start-up only through its headers
// (chain.HeaderSeqs) by the stream sequences its events were read from,
// which is what a redelivery repeats. Blocks recorded more than window
// before the newest one are forgotten.
type recent struct {
	mu     sync.Mutex
	window time.Duration
	ids    map[idKey]uint64 // event id -> chain index
	seqs   map[seqKey]bool  // (stream, sequence) of events in blocks seen by headers only
	blocks []rememberedBlock
	newest time.Time
	// idsFrom: the ids of every block recorded at or after it are
	// remembered (zero: since the genesis).
	idsFrom time.Time
}

type idKey [16]byte

type seqKey struct {
	stream string
	seq    uint64
}

type rememberedBlock struct {
	at   time.Time
	ids  []idKey
	seqs []seqKey
}

func newRecent(window time.Duration) *recent {
	return &recent{window: window, ids: map[idKey]uint64{}, seqs: map[seqKey]bool{}}
}

// keyOf is a fixed-size key of an event id: the ids are kept for minutes
// at up to thousands of events per second.
func keyOf(eventID string) idKey {
	sum := sha256.Sum256([]byte(eventID))
	return idKey(sum[:16])
}

// known returns the chain index of rec's event (0 when remembered only by
// where it was read from) if a remembered block holds it.
func (r *recent) known(rec chain.Record) (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i, ok := r.ids[keyOf(rec.EventID)]; ok {
		return i, true
	}
	return 0, r.seqs[seqKey{rec.Stream, rec.StreamSeq}]
}

// holds reports whether a remembered block holds the event read from seq
// of stream.
func (r *recent) holds(stream string, seq uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seqs[seqKey{stream, seq}]
}

// mayPredate reports whether an event of time t could have been audited
// in a block older than what is remembered by event id: then only its
// domain stream can tell whether it is a copy of an audited event. The
// audit records an event after it happened, up to clockSkew earlier by the
// clocks of different hosts.
func (r *recent) mayPredate(t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.idsFrom.IsZero() && t.Before(r.idsFrom.Add(clockSkew))
}

// clockSkew bounds how far apart the clocks of the producers and of the
// audit may be.
const clockSkew = 5 * time.Second

// addEntries remembers a block by its entries' event ids.
func (r *recent) addEntries(at time.Time, entries []chain.Entry) {
	b := rememberedBlock{at: at, ids: make([]idKey, len(entries))}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range entries {
		b.ids[i] = keyOf(e.EventID)
		r.ids[b.ids[i]] = e.Index
	}
	r.add(b)
}

// addSeqs remembers a block by where its events were read from.
func (r *recent) addSeqs(at time.Time, seqs chain.Seqs) {
	var b rememberedBlock
	b.at = at
	seqs.Each(func(stream string, seq uint64) { b.seqs = append(b.seqs, seqKey{stream, seq}) })
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range b.seqs {
		r.seqs[k] = true
	}
	r.add(b)
}

// startIDs says that event ids are remembered from blocks recorded at or
// after at on (the blocks before were seen by headers only).
func (r *recent) startIDs(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.idsFrom = at
}

// add appends b and forgets the blocks that left the window. Under r.mu.
func (r *recent) add(b rememberedBlock) {
	r.blocks = append(r.blocks, b)
	if b.at.After(r.newest) {
		r.newest = b.at
	}
	cut := r.newest.Add(-r.window)
	n := 0
	for n < len(r.blocks) && r.blocks[n].at.Before(cut) {
		for _, k := range r.blocks[n].ids {
			delete(r.ids, k)
		}
		for _, k := range r.blocks[n].seqs {
			delete(r.seqs, k)
		}
		n++
	}
	if n > 0 {
		clear(r.blocks[:n]) // release the keys; append reallocates the array as it grows
		r.blocks = r.blocks[n:]
		if cut.After(r.idsFrom) {
			r.idsFrom = cut
		}
	}
}

// size returns the number of events remembered (metrics, tests).
func (r *recent) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ids) + len(r.seqs)
}
