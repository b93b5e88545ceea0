package chain

import (
	"fmt"
)

// Break describes the first entry at which the chain stops verifying.
type Break struct {
	Index     uint64 `json:"index"`      // the entry's chain index
	StreamSeq uint64 `json:"stream_seq"` // the audit stream sequence of the block holding it
	Reason    string `json:"reason"`
}

// Result is the outcome of verifying the whole chain.
type Result struct {
	OK bool `json:"ok"`
	// Entries counts the entries (audited events) of every block that
	// decodes.
	Entries int `json:"entries"`
	// Blocks counts the messages of the audit stream.
	Blocks int    `json:"blocks"`
	Head   string `json:"head"`
	// FirstBroken is set only when OK is false.
	FirstBroken *Break `json:"first_broken,omitempty"`
}

// Verifier checks stored blocks one at a time, in stream order, against
// the chain rules: each block is stored on BlockSubject and decodes, its
// first index and prev_hash continue the previous block, its count and
// last_hash match its entries, its HeaderSeqs header lists its entries'
// events; each entry's index is one more than the previous entry's (1 for
// the first), its prev_hash is the previous entry's hash (GenesisHash for
// the first), and its hash matches its content.
type Verifier struct {
	prevIndex uint64
	prevHash  string
	entries   int
	blocks    int
	head      string
	broken    *Break
}

// NewVerifier returns a verifier at the start of the chain.
func NewVerifier() *Verifier { return &Verifier{prevHash: GenesisHash, head: GenesisHash} }

// Add checks the message stored at streamSeq on subject, with the value
// of its HeaderSeqs header. After the first break, messages are only
// counted.
func (v *Verifier) Add(subject, seqsHeader string, raw []byte, streamSeq uint64) {
	v.blocks++
	b, err := DecodeBlock(raw)
	if err != nil {
		// The chain goes on from the last block that decodes, as the
		// appender's does.
		v.fail(v.prevIndex+1, streamSeq, err.Error())
		return
	}
	v.entries += b.Count
	v.head = b.LastHash
	if v.broken != nil {
		return
	}
	defer func() { v.prevIndex, v.prevHash = b.Entries[b.Count-1].Index, b.Entries[b.Count-1].Hash }()
	switch {
	case subject != BlockSubject:
		v.fail(b.First, streamSeq, fmt.Sprintf("block stored on %s, not %s", subject, BlockSubject))
		return
	case b.First != v.prevIndex+1:
		v.fail(b.First, streamSeq, fmt.Sprintf("block index gap: want first %d, got %d", v.prevIndex+1, b.First))
		return
	case b.PrevHash != v.prevHash:
		v.fail(b.First, streamSeq, fmt.Sprintf("block prev_hash %s is not the previous block's last hash %s", b.PrevHash, v.prevHash))
		return
	}
	prevIndex, prevHash := v.prevIndex, v.prevHash
	for _, e := range b.Entries {
		switch {
		case e.Index != prevIndex+1:
			v.fail(e.Index, streamSeq, fmt.Sprintf("index gap: want %d, got %d", prevIndex+1, e.Index))
		case e.PrevHash != prevHash:
			v.fail(e.Index, streamSeq, fmt.Sprintf("prev_hash %s is not the previous entry's hash %s", e.PrevHash, prevHash))
		case e.ComputeHash() != e.Hash:
			v.fail(e.Index, streamSeq, fmt.Sprintf("hash mismatch: stored %s, computed %s", e.Hash, e.ComputeHash()))
		}
		if v.broken != nil {
			return
		}
		prevIndex, prevHash = e.Index, e.Hash
	}
	last := b.Entries[b.Count-1]
	switch {
	case b.LastHash != last.Hash:
		v.fail(last.Index, streamSeq, fmt.Sprintf("block last_hash %s is not its last entry's hash %s", b.LastHash, last.Hash))
	case seqsHeader != SeqsOf(b.Entries).String():
		v.fail(b.First, streamSeq, fmt.Sprintf("block header %s %q does not list its entries' events %q", HeaderSeqs, seqsHeader, SeqsOf(b.Entries).String()))
	}
}

func (v *Verifier) fail(index, seq uint64, reason string) {
	if v.broken == nil {
		v.broken = &Break{Index: index, StreamSeq: seq, Reason: reason}
	}
}

// Result returns the verdict over everything added so far.
func (v *Verifier) Result() Result {
	return Result{OK: v.broken == nil, Entries: v.entries, Blocks: v.blocks, Head: v.head, FirstBroken: v.broken}
}
