package chain

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HeaderSeqs is the header of a stored block that lists, per source
// stream, the stream sequences of the events its entries audit, as runs:
// "INVENTORY:7-9;ORDERS:3,5-6". It lets readers find the blocks that hold
// given events from headers alone (headers-only consumers). It is derived
// from the entries, which the hashes cover; verification checks that it
// agrees with them.
const HeaderSeqs = "Audit-Seqs"

// Block is one message of the audit stream: consecutive entries of the
// chain, written by one group commit (or part of one, to keep a message
// small). A block's first entry links to the previous block's last entry,
// so the blocks are chained by the entries' own hashes: PrevHash is the
// previous block's LastHash.
type Block struct {
	First      uint64  `json:"first"`       // index of the first entry
	Count      int     `json:"count"`       // number of entries
	PrevHash   string  `json:"prev_hash"`   // the previous block's last hash (GenesisHash for the first block)
	LastHash   string  `json:"last_hash"`   // the hash of the last entry
	RecordedAt string  `json:"recorded_at"` // when the block was written
	Entries    []Entry `json:"entries"`
}

// Seal returns the block holding entries (consecutive, non-empty),
// recorded at now.
func Seal(entries []Entry, now time.Time) Block {
	return Block{
		First: entries[0].Index, Count: len(entries),
		PrevHash: entries[0].PrevHash, LastHash: entries[len(entries)-1].Hash,
		RecordedAt: now.UTC().Format(time.RFC3339Nano), Entries: entries,
	}
}

// Head returns the head a block leaves the chain at, stored at seq.
func (b Block) Head(seq uint64) Head {
	at, _ := time.Parse(time.RFC3339Nano, b.RecordedAt) // zero if tampered: only the dedupe window uses it
	return Head{Index: b.First + uint64(b.Count) - 1, Hash: b.LastHash, Seq: seq, At: at}
}

// BlockSize is the stored size of a block of entries whose encoded
// entries (Encode) total entryBytes.
func BlockSize(entries, entryBytes int) int { return blockOverhead + entryBytes + entries }

// blockOverhead bounds the bytes of a block besides its entries and their
// separating commas.
const blockOverhead = 256

// EncodeBlock returns the stored form of b from its entries already
// encoded (Encode), so that each entry is encoded once.
func EncodeBlock(b Block, encoded [][]byte) []byte {
	var buf bytes.Buffer
	size := 0
	for _, e := range encoded {
		size += len(e)
	}
	buf.Grow(BlockSize(len(encoded), size))
	fmt.Fprintf(&buf, `{"first":%d,"count":%d,"prev_hash":%q,"last_hash":%q,"recorded_at":%q,"entries":[`,
		b.First, b.Count, b.PrevHash, b.LastHash, b.RecordedAt)
	for i, e := range encoded {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(e)
	}
	buf.WriteString("]}")
	return buf.Bytes()
}

// DecodeBlock parses a stored block and checks its shape (not its hashes:
// that is the Verifier's work).
func DecodeBlock(raw []byte) (Block, error) {
	var b Block
	if err := json.Unmarshal(raw, &b); err != nil {
		return Block{}, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	if b.First == 0 || b.Count != len(b.Entries) || b.Count == 0 || b.PrevHash == "" || b.LastHash == "" {
		return Block{}, fmt.Errorf("%w: a block needs its first index, a count matching its entries, and its hashes", ErrUndecodable)
	}
	for _, e := range b.Entries {
		if err := e.complete(); err != nil {
			return Block{}, err
		}
	}
	return b, nil
}

// Seqs is a set of events named by where they were read from: per source
// stream, sorted runs of stream sequences.
type Seqs map[string][]Run

// Run is the stream sequences From to To, both included.
type Run struct{ From, To uint64 }

// SeqsOf returns where the entries' events were read from.
func SeqsOf(entries []Entry) Seqs {
	by := map[string][]uint64{}
	for _, e := range entries {
		by[e.Stream] = append(by[e.Stream], e.StreamSeq)
	}
	out := make(Seqs, len(by))
	for stream, seqs := range by {
		slices.Sort(seqs)
		var runs []Run
		for _, q := range seqs {
			if n := len(runs); n > 0 && q <= runs[n-1].To+1 {
				runs[n-1].To = max(runs[n-1].To, q)
				continue
			}
			runs = append(runs, Run{From: q, To: q})
		}
		out[stream] = runs
	}
	return out
}

// Contains reports whether the set holds seq of stream.
func (s Seqs) Contains(stream string, seq uint64) bool {
	runs := s[stream]
	i, _ := slices.BinarySearchFunc(runs, seq, func(r Run, q uint64) int {
		switch {
		case r.To < q:
			return -1
		case r.From > q:
			return 1
		}
		return 0
	})
	return i < len(runs) && runs[i].From <= seq && seq <= runs[i].To
}

// Each calls fn with every stream sequence in the set.
func (s Seqs) Each(fn func(stream string, seq uint64)) {
	for stream, runs := range s {
		for _, r := range runs {
			for q := r.From; q <= r.To; q++ {
				fn(stream, q)
			}
		}
	}
}

// String is the header form: streams in order, "ORDERS:3,5-6;PAYMENTS:2".
func (s Seqs) String() string {
	streams := make([]string, 0, len(s))
	for stream := range s {
		streams = append(streams, stream)
	}
	slices.Sort(streams)
	var b strings.Builder
	for i, stream := range streams {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(stream)
		b.WriteByte(':')
		for j, r := range s[stream] {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatUint(r.From, 10))
			if r.To != r.From {
				b.WriteByte('-')
				b.WriteString(strconv.FormatUint(r.To, 10))
			}
		}
	}
	return b.String()
}

// ParseSeqs parses the header form of a set.
func ParseSeqs(v string) (Seqs, error) {
	out := Seqs{}
	if v == "" {
		return out, nil
	}
	for part := range strings.SplitSeq(v, ";") {
		stream, list, ok := strings.Cut(part, ":")
		if !ok || stream == "" || list == "" {
			return nil, fmt.Errorf("%w: sequence list %q", ErrUndecodable, part)
		}
		for item := range strings.SplitSeq(list, ",") {
			from, to, isRun := strings.Cut(item, "-")
			f, err := strconv.ParseUint(from, 10, 64)
			t := f
			if err == nil && isRun {
				t, err = strconv.ParseUint(to, 10, 64)
			}
			if err != nil || t < f {
				return nil, fmt.Errorf("%w: sequence run %q", ErrUndecodable, item)
			}
			out[stream] = append(out[stream], Run{From: f, To: t})
		}
	}
	for _, runs := range out {
		slices.SortFunc(runs, func(a, b Run) int { return cmp.Compare(a.From, b.From) })
	}
	return out, nil
}
