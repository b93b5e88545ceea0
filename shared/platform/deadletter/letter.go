// Package deadletter owns the dead letter: a message a consumer gave up on,
// copied with why into the dead-letter stream (DLQ) on subject
// dlq.<consumer>.<stream>.<seq>. It holds the one Letter type, written
// (Write, by the runner and the advisory capture) and read back (Letters,
// served over HTTP by Admin), its one encoding on the wire (Encode,
// Decode: also what the chaos tools read), and the dead-letter stream
// (StreamConfig, EnsureStream).
//
// Resolving a letter (replay or discard) replaces it, in one
// compare-and-set rollup write, by a small tombstone on the same subject;
// the tombstone expires after a while. As long as it is there the subject
// is not empty, so neither the runner nor an advisory processed late can
// dead-letter that message again.
package deadletter

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/platform/subjects"
	"github.com/eventshop/shared/platform/trace"
)

// Headers of a dead letter, beside the original message's own.
const (
	HeaderOriginalSubject  = "Dlq-Original-Subject"
	HeaderOriginalStream   = "Dlq-Original-Stream"
	HeaderOriginalSequence = "Dlq-Original-Sequence"
	HeaderConsumer         = "Dlq-Consumer"
	HeaderDeliveries       = "Dlq-Deliveries"
	HeaderError            = "Dlq-Error"
	HeaderTime             = "Dlq-Time"
	// HeaderOriginalMissing is "true" on a dead letter written after the
	// original message had already left its stream: it records the loss,
	// and there is no payload to replay.
	HeaderOriginalMissing = "Dlq-Original-Missing"
)

// Headers of a tombstone, the record a resolved dead letter leaves on its
// subject (beside the Dlq-Consumer and Dlq-Original-* headers).
const (
	HeaderResolution     = "Dlq-Resolution"      // ResolutionReplayed or ResolutionDiscarded
	HeaderResolvedTime   = "Dlq-Resolved-Time"   // RFC 3339
	HeaderEntrySequence  = "Dlq-Entry-Sequence"  // the DLQ sequence of the letter it replaced
	HeaderReplaySequence = "Dlq-Replay-Sequence" // stream sequence of the replayed copy
)

// Resolutions.
const (
	ResolutionReplayed  = "replayed"
	ResolutionDiscarded = "discarded"
)

// maxReasonLen bounds the error text kept in a dead letter's header.
const maxReasonLen = 2048

// Letter is a message given up on, and why: what Write stores and what
// Decode reads back. The fields a writer fills are those of the Dlq-*
// headers and the original message; reading back adds, as fields of the
// same type rather than a wrapper, where the letter is stored (DLQSubject,
// DLQSequence) and, for the tombstone of a resolved letter, its
// Resolution: every reader (the admin, the gauge, the chaos checker) then
// handles one value, and a letter read back can be written again as it is.
type Letter struct {
	Consumer         string      // durable that gave up on the message
	OriginalStream   string      // stream of the original message
	OriginalSequence uint64      // its stream sequence
	OriginalSubject  string      // its subject ("" when Missing)
	Deliveries       uint64      // deliveries it had
	Reason           string      // the last error
	Time             time.Time   // when it was given up on
	Header           nats.Header // its headers (trace and correlation ids; no Dlq-*, no Nats-*)
	Data             []byte      // its payload
	// Missing says the original had left its stream before it could be
	// copied: the letter records the loss instead of the payload.
	Missing bool

	// Read back only (Write ignores them).
	DLQSubject  string     // the subject it is stored on: dlq.<consumer>.<stream>.<seq>
	DLQSequence uint64     // its sequence in the dead-letter stream: the letter's id
	Resolution  Resolution // set (Kind not "") on the tombstone of a resolved letter
}

// Resolution describes a resolved dead letter, read from its tombstone.
type Resolution struct {
	Kind           string // ResolutionReplayed or ResolutionDiscarded
	Time           time.Time
	ReplaySequence uint64 // for a replay: the copy's stream sequence
}

// Resolved reports whether l is the tombstone of a resolved letter.
func (l Letter) Resolved() bool { return l.Resolution.Kind != "" }

// OrderID returns the order id of the original subject
// (<domain>.<order_id>.<verb>), if it has one.
func (l Letter) OrderID() string { return subjects.OrderID(l.OriginalSubject) }

// TraceID returns the trace id of the original traceparent header.
func (l Letter) TraceID() string { return trace.TraceID(l.Header.Get("traceparent")) }

// Subject is the subject of the dead letter consumer wrote for the message
// at seq of stream: one subject per consumer and message, so each message
// is dead-lettered at most once by each consumer.
func Subject(consumer, stream string, seq uint64) string {
	return "dlq." + consumer + "." + stream + "." + strconv.FormatUint(seq, 10)
}

// ParseSubject splits a dead-letter subject, dlq.<consumer>.<stream>.<seq>.
func ParseSubject(subject string) (consumer, stream string, seq uint64, ok bool) {
	t := strings.Split(subject, ".")
	if len(t) != 4 || t[0] != "dlq" {
		return "", "", 0, false
	}
	n, err := strconv.ParseUint(t[3], 10, 64)
	if err != nil {
		return "", "", 0, false
	}
	return t[1], t[2], n, true
}

// Encode returns the message that stores l on its subject: for a letter,
// the original payload and headers with the Dlq-* headers; for a resolved
// one (l.Resolution set), the small tombstone that replaces it, which
// keeps only where the message was and how it was resolved.
func Encode(l Letter) *nats.Msg {
	m := nats.NewMsg(Subject(l.Consumer, l.OriginalStream, l.OriginalSequence))
	if l.Resolved() {
		m.Header.Set(HeaderResolution, l.Resolution.Kind)
		m.Header.Set(HeaderResolvedTime, l.Resolution.Time.UTC().Format(time.RFC3339Nano))
		m.Header.Set(HeaderEntrySequence, strconv.FormatUint(l.DLQSequence, 10))
		m.Header.Set(HeaderConsumer, l.Consumer)
		m.Header.Set(HeaderOriginalStream, l.OriginalStream)
		m.Header.Set(HeaderOriginalSequence, strconv.FormatUint(l.OriginalSequence, 10))
		m.Header.Set(HeaderOriginalSubject, l.OriginalSubject)
		if l.Resolution.ReplaySequence > 0 {
			m.Header.Set(HeaderReplaySequence, strconv.FormatUint(l.Resolution.ReplaySequence, 10))
		}
		return m
	}
	m.Data = l.Data
	for k, vs := range l.Header {
		// Nats-* headers steer JetStream (expected sequences, message id,
		// TTL, rollup) or describe where a direct get found the message;
		// copied, they would act on the dead-letter stream instead. Dlq-*
		// headers are the letter's own: a message cannot bring them (a
		// forged resolution would hide the letter).
		if isControlHeader(k) || isLetterHeader(k) {
			continue
		}
		for _, v := range vs {
			m.Header.Add(k, v)
		}
	}
	m.Header.Set(HeaderOriginalSubject, l.OriginalSubject)
	m.Header.Set(HeaderOriginalStream, l.OriginalStream)
	m.Header.Set(HeaderOriginalSequence, strconv.FormatUint(l.OriginalSequence, 10))
	m.Header.Set(HeaderConsumer, l.Consumer)
	m.Header.Set(HeaderDeliveries, strconv.FormatUint(l.Deliveries, 10))
	m.Header.Set(HeaderError, reason(l.Reason))
	m.Header.Set(HeaderTime, l.Time.UTC().Format(time.RFC3339Nano))
	if l.Missing {
		m.Header.Set(HeaderOriginalMissing, "true")
	}
	return m
}

// Decode reads the letter, or the tombstone of a resolved one, that m
// stores in the dead-letter stream. The subject is authoritative
// (dlq.<consumer>.<stream>.<seq>) should a header be missing, and the time
// m was stored stands in for an unreadable one.
func Decode(m *jetstream.RawStreamMsg) Letter {
	h := m.Header
	l := Letter{
		Consumer:         h.Get(HeaderConsumer),
		OriginalStream:   h.Get(HeaderOriginalStream),
		OriginalSequence: parseUint(h.Get(HeaderOriginalSequence)),
		OriginalSubject:  h.Get(HeaderOriginalSubject),
		Deliveries:       parseUint(h.Get(HeaderDeliveries)),
		Reason:           h.Get(HeaderError),
		Time:             parseTime(h.Get(HeaderTime), m.Time),
		Missing:          h.Get(HeaderOriginalMissing) == "true",
		Header:           nats.Header{},
		Data:             m.Data,
		DLQSubject:       m.Subject,
		DLQSequence:      m.Sequence,
	}
	if parts := strings.Split(m.Subject, "."); len(parts) == 4 {
		if l.Consumer == "" {
			l.Consumer = parts[1]
		}
		if l.OriginalStream == "" {
			l.OriginalStream = parts[2]
		}
		if l.OriginalSequence == 0 {
			l.OriginalSequence = parseUint(parts[3])
		}
	}
	for k, vs := range h {
		if isLetterHeader(k) || isControlHeader(k) {
			continue
		}
		l.Header[k] = slices.Clone(vs)
	}
	if kind := h.Get(HeaderResolution); kind != "" {
		// A tombstone: the id is that of the letter it replaced.
		l.DLQSequence = parseUint(h.Get(HeaderEntrySequence))
		l.Resolution = Resolution{Kind: kind, Time: parseTime(h.Get(HeaderResolvedTime), m.Time),
			ReplaySequence: parseUint(h.Get(HeaderReplaySequence))}
	}
	return l
}

// reason bounds the error text kept in a letter.
func reason(s string) string {
	if len(s) > maxReasonLen {
		return s[:maxReasonLen]
	}
	return s
}

// isControlHeader reports a JetStream control or metadata header (Nats-*).
func isControlHeader(k string) bool { return len(k) >= 5 && strings.EqualFold(k[:5], "nats-") }

// isLetterHeader reports a header the dead letter itself sets (Dlq-*).
func isLetterHeader(k string) bool { return len(k) >= 4 && strings.EqualFold(k[:4], "dlq-") }

func parseUint(s string) uint64 {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func parseTime(s string, fallback time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t
	}
	return fallback
}
