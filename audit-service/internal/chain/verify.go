package chain

import (
	"fmt"
)

// Break describes the first entry at which the chain stops verifying.
type Break struct {
	Index     uint64 `json:"index"`
	StreamSeq uint64 `json:"stream_seq"`
	Reason    string `json:"reason"`
}

// Result is the outcome of verifying the whole chain.
type Result struct {
	OK      bool   `json:"ok"`
	Entries int    `json:"entries"`
	Head    string `json:"head"`
	// FirstBroken is set only when OK is false.
	FirstBroken *Break `json:"first_broken,omitempty"`
}

// Verifier checks stored entries one at a time, in stream order, against
// the chain rules: each entry decodes, its index is one more than the
// previous one (1 for the first), its prev_hash is the previous entry's hash
// (GenesisHash for the first), its hash matches its content, and it is stored
// on the subject its content names.
type Verifier struct {
	prevIndex uint64
	prevHash  string
	entries   int
	head      string
	broken    *Break
}

// NewVerifier returns a verifier at the start of the chain.
func NewVerifier() *Verifier { return &Verifier{prevHash: GenesisHash, head: GenesisHash} }

// Add checks the message stored at streamSeq on subject. After the first
// break, messages are only counted.
func (v *Verifier) Add(subject string, raw []byte, streamSeq uint64) {
	v.entries++
	e, err := Decode(raw)
	if err != nil {
		v.head = ""
		v.fail(v.prevIndex+1, streamSeq, err.Error())
		return
	}
	v.head = e.Hash
	if v.broken != nil {
		return
	}
	switch {
	case e.Index != v.prevIndex+1:
		v.fail(e.Index, streamSeq, fmt.Sprintf("index gap: want %d, got %d", v.prevIndex+1, e.Index))
	case e.PrevHash != v.prevHash:
		v.fail(e.Index, streamSeq, fmt.Sprintf("prev_hash %s is not the previous entry's hash %s", e.PrevHash, v.prevHash))
	case e.ComputeHash() != e.Hash:
		v.fail(e.Index, streamSeq, fmt.Sprintf("hash mismatch: stored %s, computed %s", e.Hash, e.ComputeHash()))
	case subject != Subject(e.OrderID, e.EventID):
		v.fail(e.Index, streamSeq, fmt.Sprintf("stored on %s, but the entry belongs on %s", subject, Subject(e.OrderID, e.EventID)))
	}
	v.prevIndex, v.prevHash = e.Index, e.Hash
}

func (v *Verifier) fail(index, seq uint64, reason string) {
	if v.broken == nil {
		v.broken = &Break{Index: index, StreamSeq: seq, Reason: reason}
	}
}

// Result returns the verdict over everything added so far.
func (v *Verifier) Result() Result {
	return Result{OK: v.broken == nil, Entries: v.entries, Head: v.head, FirstBroken: v.broken}
}
