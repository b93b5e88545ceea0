package chaos

import (
	"slices"
	"strings"
	"testing"

	"github.com/eventshop/shared/platform/deadletter"
)

func TestCompareDeadLetters(t *testing.T) {
	t.Parallel()
	durables := []Durable{
		{Stream: "ORDERS", Name: "inventory-orders", Filters: []string{"orders.*.created", "orders.*.confirmed", "orders.*.cancelled"}},
		{Stream: "ORDERS", Name: "order-deadlines", Filters: []string{"orders.*.created"}},
		{Stream: "ORDERS", Name: "notification-orders", Filters: []string{"orders.*.confirmed", "orders.*.cancelled"}},
		{Stream: "ORDERS", Name: "audit-orders"}, // the whole stream
		{Stream: "INVENTORY", Name: "audit-inventory"},
	}
	p1 := Injected{Stream: "ORDERS", Seq: 10, Subject: "orders.chaos-p0.created", What: "not json"}
	p2 := Injected{Stream: "ORDERS", Seq: 42, Subject: "orders.chaos-p1.created", What: "not an event"}
	letter := func(durable string, p Injected) deadletter.Letter {
		return deadletter.Letter{DLQSubject: deadletter.Subject(durable, p.Stream, p.Seq), OriginalSubject: p.Subject, Reason: "invalid event"}
	}
	all := func(ps ...Injected) []deadletter.Letter {
		var out []deadletter.Letter
		for _, p := range ps {
			for _, d := range []string{"inventory-orders", "order-deadlines", "audit-orders"} {
				out = append(out, letter(d, p))
			}
		}
		return out
	}
	tests := []struct {
		name    string
		poison  []Injected
		letters []deadletter.Letter
		twice   string   // a subject holding two messages
		want    []string // substrings, one per violation
	}{
		{name: "nothing injected, nothing dead-lettered"},
		{name: "each poison once by each durable reading created", poison: []Injected{p1, p2}, letters: all(p1, p2)},
		{name: "a durable missed one", poison: []Injected{p1, p2}, letters: all(p1, p2)[1:],
			want: []string{"seq 10 (orders.chaos-p0.created, not json) was not dead-lettered by inventory-orders"}},
		{name: "a real event dead-lettered", poison: []Injected{p1},
			letters: append(all(p1), deadletter.Letter{DLQSubject: "dlq.notification-orders.ORDERS.77", OriginalSubject: "orders.o9.confirmed", Reason: "max deliveries exceeded"}),
			want:    []string{"unexpected dead letter: notification-orders gave up on ORDERS seq 77 (orders.o9.confirmed): max deliveries exceeded"}},
		{name: "poison dead-lettered twice by one durable", poison: []Injected{p1},
			letters: all(p1), twice: "dlq.inventory-orders.ORDERS.10",
			want: []string{"dead-lettered 2 times by inventory-orders"}},
		{name: "a letter resolved", poison: []Injected{p1},
			letters: func() []deadletter.Letter {
				l := all(p1)
				l[2].Resolution.Kind = deadletter.ResolutionDiscarded
				return l
			}(),
			want: []string{"dlq.audit-orders.ORDERS.10 was resolved (discarded)"}},
		{name: "letter names another subject", poison: []Injected{p1},
			letters: func() []deadletter.Letter { l := all(p1); l[1].OriginalSubject = "orders.x.created"; return l }(),
			want:    []string{`names "orders.x.created"`}},
		{name: "poison nobody reads", poison: []Injected{{Stream: "PAYMENTS", Seq: 3, Subject: "payments.x.succeeded"}},
			want: []string{"is read by no durable consumer"}},
		{name: "garbage subject in the stream", letters: []deadletter.Letter{{DLQSubject: "dlq.what"}},
			want: []string{"dlq.what, not a dead-letter subject"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			messages := map[string]uint64{}
			for _, l := range tt.letters {
				messages[l.DLQSubject] = 1
			}
			if tt.twice != "" {
				messages[tt.twice] = 2
			}
			got := CompareDeadLetters(tt.poison, durables, tt.letters, messages)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d violations %q, want %d %q", len(got), got, len(tt.want), tt.want)
			}
			for _, w := range tt.want {
				if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
					t.Fatalf("violations %q lack %q", got, w)
				}
			}
		})
	}
}

func TestExpectedLetters(t *testing.T) {
	t.Parallel()
	durables := []Durable{
		{Stream: "ORDERS", Name: "inventory-orders", Filters: []string{"orders.*.created"}},
		{Stream: "ORDERS", Name: "payment-orders", Filters: []string{"orders.*.cancelled"}},
		{Stream: "INVENTORY", Name: "audit-inventory"},
	}
	want, unread := ExpectedLetters([]Injected{{Stream: "ORDERS", Seq: 5, Subject: "orders.p.created"}}, durables)
	if len(unread) != 0 || len(want) != 1 {
		t.Fatalf("want %v unread %v", want, unread)
	}
	if _, ok := want["dlq.inventory-orders.ORDERS.5"]; !ok {
		t.Fatalf("want %v, lacks dlq.inventory-orders.ORDERS.5", want)
	}
}
