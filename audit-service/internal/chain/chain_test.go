package chain_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventshop/audit-service/internal/chain"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.UTC)

func record(i int) chain.Record {
	return chain.Record{
		EventID: fmt.Sprintf("e-%d", i), Type: "shop.order.created", Source: "order-service", OrderID: "o-1",
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Stream: "ORDERS", StreamSeq: uint64(i),
		Raw: []byte(fmt.Sprintf(`{"id":"e-%d","data":{"n":%d}}`, i, i)),
	}
}

func TestHashFollowsTheDocumentedFormula(t *testing.T) {
	t.Parallel()
	event := []byte(`{"id":"e-1"}`)
	sum := sha256.Sum256([]byte(chain.GenesisHash + "\n1\ne-1\n2026-11-23T10:00:00.123456789Z\n" + `{"id":"e-1"}`))
	if got, want := chain.Hash(chain.GenesisHash, 1, "e-1", t0.Format(time.RFC3339Nano), event), hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("Hash = %s, want %s", got, want)
	}
	if len(chain.GenesisHash) != 64 || strings.Trim(chain.GenesisHash, "0") != "" {
		t.Fatalf("GenesisHash = %q", chain.GenesisHash)
	}
}

func TestNextEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     string
		want    string // stored event bytes
		wantErr error
	}{
		{name: "compact event kept as is", raw: `{"id":"e-1","data":{"a":1}}`, want: `{"id":"e-1","data":{"a":1}}`},
		{name: "whitespace is compacted before hashing", raw: "{\n  \"id\": \"e-1\",\n  \"data\": {\"a\": 1}\n}", want: `{"id":"e-1","data":{"a":1}}`},
		{name: "html characters and escapes survive", raw: `{"id":"e-1","data":{"d":"<b>&\u003c</b>"}}`, want: `{"id":"e-1","data":{"d":"<b>&\u003c</b>"}}`},
		{name: "not json", raw: `{"id":`, wantErr: chain.ErrInvalidRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := record(1)
			rec.Raw = []byte(tt.raw)
			e, err := chain.Next(chain.Genesis(), rec, t0)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Next err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			raw, err := chain.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := chain.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Event) != tt.want {
				t.Fatalf("stored event = %s, want %s", got.Event, tt.want)
			}
			if got.Index != 1 || got.PrevHash != chain.GenesisHash || got.Hash != got.ComputeHash() || got.Hash != e.Hash {
				t.Fatalf("decoded entry = %+v", got)
			}
			if got.RecordedAt != "2026-11-23T10:00:00.123456789Z" {
				t.Fatalf("recorded_at = %s", got.RecordedAt)
			}
		})
	}
}

type stored struct {
	subject string
	header  string
	raw     []byte
}

// encode returns the stored form of b, with its header.
func encode(t *testing.T, b chain.Block) stored {
	t.Helper()
	var enc [][]byte
	for _, e := range b.Entries {
		raw, err := chain.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		enc = append(enc, raw)
	}
	return stored{subject: chain.BlockSubject, header: chain.SeqsOf(b.Entries).String(), raw: chain.EncodeBlock(b, enc)}
}

// build returns 5 valid entries stored in three blocks: 1-2, 3-4, 5.
func build(t *testing.T) []stored {
	t.Helper()
	head := chain.Genesis()
	var out []stored
	i := 0
	for _, n := range []int{2, 2, 1} {
		var entries []chain.Entry
		for range n {
			i++
			e, err := chain.Next(head, record(i), t0.Add(time.Duration(i)*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, e)
			head = chain.Head{Index: e.Index, Hash: e.Hash}
		}
		out = append(out, encode(t, chain.Seal(entries, t0.Add(time.Duration(i)*time.Second))))
	}
	return out
}

func mutate(t *testing.T, s stored, f func(b *chain.Block)) stored {
	t.Helper()
	b, err := chain.DecodeBlock(s.raw)
	if err != nil {
		t.Fatal(err)
	}
	f(&b)
	m := encode(t, b)
	m.subject, m.header = s.subject, s.header
	return m
}

func TestBlockRoundTrip(t *testing.T) {
	t.Parallel()
	s := build(t)
	b, err := chain.DecodeBlock(s[1].raw)
	if err != nil {
		t.Fatal(err)
	}
	if b.First != 3 || b.Count != 2 || b.PrevHash != b.Entries[0].PrevHash || b.LastHash != b.Entries[1].Hash ||
		b.Head(7).Index != 4 || b.Head(7).Seq != 7 || !b.Head(7).At.Equal(t0.Add(4*time.Second)) {
		t.Fatalf("block = %+v", b)
	}
	if s[1].header != "ORDERS:3-4" {
		t.Fatalf("header = %q", s[1].header)
	}
	if _, err := chain.DecodeBlock([]byte(`{"first":1,"count":2,"prev_hash":"a","last_hash":"b","entries":[]}`)); !errors.Is(err, chain.ErrUndecodable) {
		t.Fatalf("block with a wrong count decoded: %v", err)
	}
}

func TestSeqs(t *testing.T) {
	t.Parallel()
	entries := []chain.Entry{
		{Stream: "ORDERS", StreamSeq: 5}, {Stream: "ORDERS", StreamSeq: 3}, {Stream: "PAYMENTS", StreamSeq: 2},
		{Stream: "ORDERS", StreamSeq: 6}, {Stream: "ORDERS", StreamSeq: 9},
	}
	s := chain.SeqsOf(entries)
	if got, want := s.String(), "ORDERS:3,5-6,9;PAYMENTS:2"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	parsed, err := chain.ParseSeqs(s.String())
	if err != nil || parsed.String() != s.String() {
		t.Fatalf("ParseSeqs = %v, %v", parsed, err)
	}
	tests := []struct {
		stream string
		seq    uint64
		want   bool
	}{
		{"ORDERS", 3, true}, {"ORDERS", 4, false}, {"ORDERS", 6, true}, {"ORDERS", 9, true}, {"ORDERS", 10, false},
		{"PAYMENTS", 2, true}, {"PAYMENTS", 3, false}, {"INVENTORY", 3, false},
	}
	for _, tt := range tests {
		if got := parsed.Contains(tt.stream, tt.seq); got != tt.want {
			t.Errorf("Contains(%s, %d) = %v, want %v", tt.stream, tt.seq, got, tt.want)
		}
	}
	for _, bad := range []string{"ORDERS", "ORDERS:x", "ORDERS:5-3", ":1"} {
		if _, err := chain.ParseSeqs(bad); !errors.Is(err, chain.ErrUndecodable) {
			t.Errorf("ParseSeqs(%q) = %v, want ErrUndecodable", bad, err)
		}
	}
}

func TestVerifier(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		tamper      func(t *testing.T, blocks []stored) []stored
		wantEntries int
		wantOK      bool
		wantIndex   uint64
		wantSeq     uint64
		wantReason  string
	}{
		{name: "intact chain", tamper: func(_ *testing.T, s []stored) []stored { return s }, wantEntries: 5, wantOK: true},
		{name: "empty chain", tamper: func(_ *testing.T, _ []stored) []stored { return nil }, wantOK: true},
		{name: "event bytes changed", tamper: func(t *testing.T, s []stored) []stored {
			s[1] = mutate(t, s[1], func(b *chain.Block) { b.Entries[0].Event = []byte(`{"id":"e-3","data":{"n":300}}`) })
			return s
		}, wantEntries: 5, wantIndex: 3, wantSeq: 2, wantReason: "hash mismatch"},
		{name: "hash recomputed after change breaks the next link", tamper: func(t *testing.T, s []stored) []stored {
			s[1] = mutate(t, s[1], func(b *chain.Block) {
				b.Entries[0].RecordedAt = "2020-01-01T00:00:00Z"
				b.Entries[0].Hash = b.Entries[0].ComputeHash()
			})
			return s
		}, wantEntries: 5, wantIndex: 4, wantSeq: 2, wantReason: "prev_hash"},
		{name: "last entry of a block changed: the next block no longer links", tamper: func(t *testing.T, s []stored) []stored {
			s[1] = mutate(t, s[1], func(b *chain.Block) {
				b.Entries[1].RecordedAt = "2020-01-01T00:00:00Z"
				b.Entries[1].Hash = b.Entries[1].ComputeHash()
				b.LastHash = b.Entries[1].Hash
			})
			return s
		}, wantEntries: 5, wantIndex: 5, wantSeq: 3, wantReason: "block prev_hash"},
		{name: "entry removed from a block", tamper: func(t *testing.T, s []stored) []stored {
			s[1] = mutate(t, s[1], func(b *chain.Block) { b.Entries = b.Entries[1:]; b.Count = 1; b.First = 4 })
			return s
		}, wantEntries: 4, wantIndex: 4, wantSeq: 2, wantReason: "block index gap"},
		{name: "block removed", tamper: func(_ *testing.T, s []stored) []stored {
			return append(s[:1:1], s[2:]...)
		}, wantEntries: 3, wantIndex: 5, wantSeq: 2, wantReason: "block index gap"},
		{name: "blocks swapped", tamper: func(_ *testing.T, s []stored) []stored {
			s[1], s[2] = s[2], s[1]
			return s
		}, wantEntries: 5, wantIndex: 5, wantSeq: 2, wantReason: "block index gap"},
		{name: "forged block appended", tamper: func(t *testing.T, s []stored) []stored {
			forged := mutate(t, s[2], func(b *chain.Block) {
				b.First, b.Entries[0].Index, b.Entries[0].EventID = 6, 6, "x"
				b.PrevHash, b.Entries[0].PrevHash = strings.Repeat("a", 64), strings.Repeat("a", 64)
			})
			return append(s, forged)
		}, wantEntries: 6, wantIndex: 6, wantSeq: 4, wantReason: "block prev_hash"},
		{name: "undecodable block", tamper: func(_ *testing.T, s []stored) []stored {
			s[1] = stored{subject: s[1].subject, raw: []byte("not json")}
			return s
		}, wantEntries: 3, wantIndex: 3, wantSeq: 2, wantReason: "undecodable"},
		{name: "block on the wrong subject", tamper: func(_ *testing.T, s []stored) []stored {
			s[1].subject = "audit.o-2.e-2"
			return s
		}, wantEntries: 5, wantIndex: 3, wantSeq: 2, wantReason: "stored on audit.o-2.e-2"},
		{name: "header does not list the block's events", tamper: func(_ *testing.T, s []stored) []stored {
			s[2].header = "ORDERS:4"
			return s
		}, wantEntries: 5, wantIndex: 5, wantSeq: 3, wantReason: "does not list"},
		{name: "last hash does not match", tamper: func(t *testing.T, s []stored) []stored {
			s[0] = mutate(t, s[0], func(b *chain.Block) { b.LastHash = strings.Repeat("b", 64) })
			return s
		}, wantEntries: 5, wantIndex: 2, wantSeq: 1, wantReason: "last_hash"},
		{name: "first block not built on genesis", tamper: func(t *testing.T, s []stored) []stored {
			s[0] = mutate(t, s[0], func(b *chain.Block) {
				b.Entries[0].PrevHash = strings.Repeat("f", 64)
				b.Entries[0].Hash = b.Entries[0].ComputeHash()
			})
			return s
		}, wantEntries: 5, wantIndex: 1, wantSeq: 1, wantReason: "prev_hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			blocks := tt.tamper(t, build(t))
			v := chain.NewVerifier()
			for i, s := range blocks {
				v.Add(s.subject, s.header, s.raw, uint64(i+1))
			}
			res := v.Result()
			if res.Entries != tt.wantEntries || res.Blocks != len(blocks) || res.OK != tt.wantOK {
				t.Fatalf("result = %+v, want ok=%v over %d entries in %d blocks", res, tt.wantOK, tt.wantEntries, len(blocks))
			}
			if tt.wantOK {
				if res.FirstBroken != nil || len(res.Head) != 64 {
					t.Fatalf("result = %+v", res)
				}
				return
			}
			b := res.FirstBroken
			if b == nil || b.Index != tt.wantIndex || b.StreamSeq != tt.wantSeq || !strings.Contains(b.Reason, tt.wantReason) {
				t.Fatalf("first broken = %+v, want index %d seq %d reason ~%q", b, tt.wantIndex, tt.wantSeq, tt.wantReason)
			}
		})
	}
}
