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

func TestSubject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, orderID, eventID, want string
	}{
		{name: "uuid event id", orderID: "o-1", eventID: "0193a7b0-1c2d-7e3f-8a9b-0c1d2e3f4a5b", want: "audit.o-1.0193a7b0-1c2d-7e3f-8a9b-0c1d2e3f4a5b"},
		{name: "dotted id is hashed", orderID: "o-1", eventID: "a.b", want: "audit.o-1.h-"},
		{name: "wildcard id is hashed", orderID: "o-1", eventID: "*", want: "audit.o-1.h-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := chain.Subject(tt.orderID, tt.eventID)
			if !strings.HasPrefix(got, tt.want) || strings.Count(got, ".") != 2 {
				t.Fatalf("Subject = %s, want prefix %s and three tokens", got, tt.want)
			}
			if got != chain.Subject(tt.orderID, tt.eventID) {
				t.Fatal("Subject is not deterministic")
			}
		})
	}
}

type stored struct {
	subject string
	raw     []byte
}

// build returns n valid stored entries.
func build(t *testing.T, n int) []stored {
	t.Helper()
	head := chain.Genesis()
	var out []stored
	for i := 1; i <= n; i++ {
		rec := record(i)
		e, err := chain.Next(head, rec, t0.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := chain.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, stored{subject: chain.Subject(rec.OrderID, rec.EventID), raw: raw})
		head = chain.Head{Index: e.Index, Hash: e.Hash, Seq: uint64(i)}
	}
	return out
}

func mutate(t *testing.T, s stored, f func(e *chain.Entry)) stored {
	t.Helper()
	e, err := chain.Decode(s.raw)
	if err != nil {
		t.Fatal(err)
	}
	f(&e)
	raw, err := chain.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return stored{subject: s.subject, raw: raw}
}

func TestVerifier(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		tamper     func(t *testing.T, entries []stored) []stored
		wantOK     bool
		wantIndex  uint64
		wantSeq    uint64
		wantReason string
	}{
		{name: "intact chain", tamper: func(_ *testing.T, s []stored) []stored { return s }, wantOK: true},
		{name: "empty chain", tamper: func(_ *testing.T, _ []stored) []stored { return nil }, wantOK: true},
		{name: "event bytes changed", tamper: func(t *testing.T, s []stored) []stored {
			s[2] = mutate(t, s[2], func(e *chain.Entry) { e.Event = []byte(`{"id":"e-3","data":{"n":300}}`) })
			return s
		}, wantIndex: 3, wantSeq: 3, wantReason: "hash mismatch"},
		{name: "hash recomputed after change breaks the next link", tamper: func(t *testing.T, s []stored) []stored {
			s[2] = mutate(t, s[2], func(e *chain.Entry) { e.RecordedAt = "2020-01-01T00:00:00Z"; e.Hash = e.ComputeHash() })
			return s
		}, wantIndex: 4, wantSeq: 4, wantReason: "prev_hash"},
		{name: "entry removed", tamper: func(_ *testing.T, s []stored) []stored {
			return append(s[:1:1], s[2:]...)
		}, wantIndex: 3, wantSeq: 2, wantReason: "index gap"},
		{name: "entries swapped", tamper: func(_ *testing.T, s []stored) []stored {
			s[1], s[2] = s[2], s[1]
			return s
		}, wantIndex: 3, wantSeq: 2, wantReason: "index gap"},
		{name: "forged entry appended", tamper: func(t *testing.T, s []stored) []stored {
			forged := mutate(t, s[4], func(e *chain.Entry) { e.Index = 6; e.EventID = "x"; e.PrevHash = strings.Repeat("a", 64) })
			return append(s, stored{subject: "audit.o-1.x", raw: forged.raw})
		}, wantIndex: 6, wantSeq: 6, wantReason: "prev_hash"},
		{name: "undecodable entry", tamper: func(_ *testing.T, s []stored) []stored {
			s[3] = stored{subject: s[3].subject, raw: []byte("not json")}
			return s
		}, wantIndex: 4, wantSeq: 4, wantReason: "undecodable"},
		{name: "entry on the wrong subject", tamper: func(_ *testing.T, s []stored) []stored {
			s[1].subject = "audit.o-2.e-2"
			return s
		}, wantIndex: 2, wantSeq: 2, wantReason: "belongs on audit.o-1.e-2"},
		{name: "first entry not built on genesis", tamper: func(t *testing.T, s []stored) []stored {
			s[0] = mutate(t, s[0], func(e *chain.Entry) { e.PrevHash = strings.Repeat("f", 64); e.Hash = e.ComputeHash() })
			return s
		}, wantIndex: 1, wantSeq: 1, wantReason: "prev_hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			entries := tt.tamper(t, build(t, 5))
			v := chain.NewVerifier()
			for i, s := range entries {
				v.Add(s.subject, s.raw, uint64(i+1))
			}
			res := v.Result()
			if res.Entries != len(entries) || res.OK != tt.wantOK {
				t.Fatalf("result = %+v, want ok=%v over %d entries", res, tt.wantOK, len(entries))
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
