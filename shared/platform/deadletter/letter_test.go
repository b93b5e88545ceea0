package deadletter_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/platform/deadletter"
)

// TestEncodeDecodeRoundTrip: what a writer encodes, the store and the
// chaos tools decode unchanged, except the original's Nats-* and Dlq-*
// headers, which a letter never carries; a tombstone keeps where the
// message was and how it was resolved.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	letter := deadletter.Letter{
		Consumer: "inventory-orders", OriginalStream: "ORDERS", OriginalSequence: 42, OriginalSubject: "orders.o-1.created",
		Deliveries: 5, Reason: "invalid event", Time: at, Data: []byte(`{"id":"e-1"}`),
		Header: nats.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
			"Nats-Msg-Id": {"x"}, "Dlq-Resolution": {"discarded"}},
	}
	tests := []struct {
		name string
		in   deadletter.Letter
		want deadletter.Letter
	}{
		{name: "letter", in: letter, want: func() deadletter.Letter {
			w := letter
			w.Header = nats.Header{"Traceparent": letter.Header["Traceparent"]}
			w.DLQSubject, w.DLQSequence = "dlq.inventory-orders.ORDERS.42", 7
			return w
		}()},
		{name: "lost original", in: deadletter.Letter{Consumer: "c", OriginalStream: "S", OriginalSequence: 3, Missing: true, Time: at},
			want: deadletter.Letter{Consumer: "c", OriginalStream: "S", OriginalSequence: 3, Missing: true, Time: at,
				Header: nats.Header{}, DLQSubject: "dlq.c.S.3", DLQSequence: 7}},
		{name: "tombstone", in: func() deadletter.Letter {
			l := letter
			l.DLQSequence = 7
			l.Resolution = deadletter.Resolution{Kind: deadletter.ResolutionReplayed, Time: at, ReplaySequence: 99}
			return l
		}(), want: deadletter.Letter{Consumer: "inventory-orders", OriginalStream: "ORDERS", OriginalSequence: 42,
			OriginalSubject: "orders.o-1.created", Time: at.Add(time.Hour), Header: nats.Header{},
			DLQSubject: "dlq.inventory-orders.ORDERS.42", DLQSequence: 7,
			Resolution: deadletter.Resolution{Kind: deadletter.ResolutionReplayed, Time: at, ReplaySequence: 99}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := deadletter.Encode(tt.in)
			got := deadletter.Decode(&jetstream.RawStreamMsg{Subject: m.Subject, Sequence: 7, Header: m.Header, Data: m.Data, Time: at.Add(time.Hour)})
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode(Encode(letter)) =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}
