package chain

import (
	"crypto/sha256"
	"sync"
	"time"
)

// Window remembers which events the blocks of the last window of the chain
// audited, so that an event delivered again is not appended again. It is
// safe for concurrent use.
//
// A block written or read whole is remembered by its entries' event ids; a
// block seen only through its headers (HeaderSeqs) by the stream sequences
// its events were read from, which is what a redelivery repeats. Blocks
// recorded more than the window before the newest one are forgotten: the
// window is measured in the chain's recorded time, not by the wall clock.
type Window struct {
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

// NewWindow returns an empty window remembering the blocks recorded within
// window of the newest one.
func NewWindow(window time.Duration) *Window {
	return &Window{window: window, ids: map[idKey]uint64{}, seqs: map[seqKey]bool{}}
}

// keyOf is a fixed-size key of an event id: the ids are kept for minutes
// at up to thousands of events per second.
func keyOf(eventID string) idKey {
	sum := sha256.Sum256([]byte(eventID))
	return idKey(sum[:16])
}

// Known returns the chain index of rec's event (0 when remembered only by
// where it was read from) if a remembered block holds it.
func (w *Window) Known(rec Record) (uint64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i, ok := w.ids[keyOf(rec.EventID)]; ok {
		return i, true
	}
	return 0, w.seqs[seqKey{rec.Stream, rec.StreamSeq}]
}

// Holds reports whether a remembered block holds the event read from seq
// of stream.
func (w *Window) Holds(stream string, seq uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seqs[seqKey{stream, seq}]
}

// MayPredate reports whether an event of time t could have been audited
// in a block older than what is remembered by event id: then only its
// domain stream can tell whether it is a copy of an audited event. The
// audit records an event after it happened, up to ClockSkew earlier by the
// clocks of different hosts.
func (w *Window) MayPredate(t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.idsFrom.IsZero() && t.Before(w.idsFrom.Add(ClockSkew))
}

// ClockSkew bounds how far apart the clocks of the producers and of the
// audit may be: the audit records an event after it happened, by its own
// clock, up to ClockSkew earlier than the event's time says.
const ClockSkew = 5 * time.Second

// AddEntries remembers a block by its entries' event ids.
func (w *Window) AddEntries(at time.Time, entries []Entry) {
	b := rememberedBlock{at: at, ids: make([]idKey, len(entries))}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, e := range entries {
		b.ids[i] = keyOf(e.EventID)
		w.ids[b.ids[i]] = e.Index
	}
	w.add(b)
}

// AddSeqs remembers a block by where its events were read from.
func (w *Window) AddSeqs(at time.Time, seqs Seqs) {
	var b rememberedBlock
	b.at = at
	seqs.Each(func(stream string, seq uint64) { b.seqs = append(b.seqs, seqKey{stream, seq}) })
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range b.seqs {
		w.seqs[k] = true
	}
	w.add(b)
}

// StartIDs says that event ids are remembered from blocks recorded at or
// after at on (the blocks before were seen by headers only).
func (w *Window) StartIDs(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.idsFrom = at
}

// add appends b and forgets the blocks that left the window. Under w.mu.
func (w *Window) add(b rememberedBlock) {
	w.blocks = append(w.blocks, b)
	if b.at.After(w.newest) {
		w.newest = b.at
	}
	cut := w.newest.Add(-w.window)
	n := 0
	for n < len(w.blocks) && w.blocks[n].at.Before(cut) {
		for _, k := range w.blocks[n].ids {
			delete(w.ids, k)
		}
		for _, k := range w.blocks[n].seqs {
			delete(w.seqs, k)
		}
		n++
	}
	if n > 0 {
		clear(w.blocks[:n]) // release the keys; append reallocates the array as it grows
		w.blocks = w.blocks[n:]
		if cut.After(w.idsFrom) {
			w.idsFrom = cut
		}
	}
}
