// Package chain is the audit log's domain: entries linked in a SHA-256 hash
// chain, stored in blocks (one per group commit), how the next entry is
// made from the head and a commit packed into blocks (Pack), what the
// recent blocks hold so that each event is appended once (Window), and how
// the stored blocks are checked for tampering.
//
// Each entry's hash covers the previous entry's hash, its own chain index,
// the event id, the time it was recorded and the exact bytes of the audited
// event, so changing, removing, reordering or inserting any entry breaks
// every hash after it. Blocks only group entries: a block's first entry
// links to the previous block's last one, so the chain runs through the
// blocks unchanged.
package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// GenesisHash is the prev_hash of the first entry.
var GenesisHash = strings.Repeat("0", 64)

// SubjectPrefix is the first token of the audit stream's subjects.
const SubjectPrefix = "audit"

// BlockSubject is the subject every block is stored on.
const BlockSubject = SubjectPrefix + ".blocks"

// AllFilter is the subject filter of the whole audit stream: the blocks
// and anything else written there, which verification reports.
const AllFilter = SubjectPrefix + ".>"

// Sentinel errors of the audit log.
var (
	// ErrNotFound means no entry exists for what was asked.
	ErrNotFound = errors.New("no audit entries")
	// ErrUndecodable marks stored bytes that are not an audit block or entry.
	ErrUndecodable = errors.New("undecodable audit entry")
	// ErrInvalidRecord marks a record that cannot be appended.
	ErrInvalidRecord = errors.New("invalid audit record")
)

// Record is one event to audit, with where it was read from.
type Record struct {
	EventID string
	Type    string
	Source  string
	OrderID string
	TraceID string
	// Time is the event's own time (its envelope's), which tells whether
	// the appender still remembers whether it was audited.
	Time time.Time
	// Stream, StreamSeq and Subject say where the event was read from.
	Stream    string
	StreamSeq uint64
	Subject   string
	// Raw is the event as it was published (a JSON object), with its
	// secrets replaced by fingerprints (Redact).
	Raw []byte
}

// Entry is one link of the chain, stored as JSON in a Block.
type Entry struct {
	Index      uint64 `json:"index"`
	EventID    string `json:"event_id"`
	Type       string `json:"type"`
	Source     string `json:"source"`
	OrderID    string `json:"order_id"`
	TraceID    string `json:"trace_id"`
	Stream     string `json:"stream"`
	StreamSeq  uint64 `json:"stream_seq"`
	RecordedAt string `json:"recorded_at"`
	PrevHash   string `json:"prev_hash"`
	Hash       string `json:"hash"`
	// Event is the audited event; its bytes are part of the hash.
	Event json.RawMessage `json:"event"`
}

// Head is the end of the chain an append builds on.
type Head struct {
	Index uint64 // chain index of the last entry (0: empty chain)
	Hash  string // hash of the last entry (GenesisHash: empty chain)
	Seq   uint64 // stream sequence of the last message in the audit stream
	// At is when the block holding the last entry was recorded.
	At time.Time
}

// Genesis is the head of an empty chain.
func Genesis() Head { return Head{Hash: GenesisHash} }

// Hash returns hex(sha256(prev_hash "\n" index "\n" event_id "\n"
// recorded_at "\n" event)).
func Hash(prevHash string, index uint64, eventID, recordedAt string, event []byte) string {
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write([]byte{'\n'})
	h.Write([]byte(strconv.FormatUint(index, 10)))
	h.Write([]byte{'\n'})
	h.Write([]byte(eventID))
	h.Write([]byte{'\n'})
	h.Write([]byte(recordedAt))
	h.Write([]byte{'\n'})
	h.Write(event)
	return hex.EncodeToString(h.Sum(nil))
}

// ComputeHash recomputes e's hash from its content.
func (e Entry) ComputeHash() string {
	return Hash(e.PrevHash, e.Index, e.EventID, e.RecordedAt, e.Event)
}

// Next returns the entry that appends rec after head, recorded at now.
//
// The event is stored compacted (insignificant whitespace removed, nothing
// else changed) and that is the form that is hashed: the JSON encoder
// compacts a raw message anyway, so hashing the original bytes would make a
// whitespace-formatted event unverifiable.
func Next(head Head, rec Record, now time.Time) (Entry, error) {
	if rec.EventID == "" || rec.OrderID == "" {
		return Entry{}, fmt.Errorf("%w: event id and order id are required", ErrInvalidRecord)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, rec.Raw); err != nil {
		return Entry{}, fmt.Errorf("%w: event is not JSON: %w", ErrInvalidRecord, err)
	}
	e := Entry{
		Index:      head.Index + 1,
		EventID:    rec.EventID,
		Type:       rec.Type,
		Source:     rec.Source,
		OrderID:    rec.OrderID,
		TraceID:    rec.TraceID,
		Stream:     rec.Stream,
		StreamSeq:  rec.StreamSeq,
		RecordedAt: now.UTC().Format(time.RFC3339Nano),
		PrevHash:   head.Hash,
		Event:      compact.Bytes(),
	}
	e.Hash = e.ComputeHash()
	return e, nil
}

// Encode returns the stored form of e. HTML escaping is off so the event
// bytes are stored exactly as hashed.
func Encode(e Entry) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("encode audit entry %d: %w", e.Index, err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Decode parses a stored entry.
func Decode(raw []byte) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return Entry{}, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	if err := e.complete(); err != nil {
		return Entry{}, err
	}
	return e, nil
}

// complete checks that e has what every stored entry has.
func (e Entry) complete() error {
	if e.Index == 0 || e.Hash == "" || e.PrevHash == "" || len(e.Event) == 0 {
		return fmt.Errorf("%w: index, hashes and event are required", ErrUndecodable)
	}
	return nil
}
