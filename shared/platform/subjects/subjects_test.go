package subjects_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/eventshop/shared/platform/subjects"
)

func TestMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		filter, subject string
		want            bool
	}{
		{"orders.*.created", "orders.o1.created", true},
		{"orders.*.created", "orders.o1.confirmed", false},
		{"orders.*.created", "orders.o1.created.x", false},
		{"orders.*.created", "orders.created", false},
		{"orders.>", "orders.o1.created", true},
		{"orders.>", "orders", false},
		{">", "anything.at.all", true},
		{"orders.o1.created", "orders.o1.created", true},
		{"orders.o1.created", "orders.o2.created", false},
		{"inventory.*.*", "orders.o1.created", false},
		{"orders.>.created", "orders.o1.created", false}, // > only ends a filter
	}
	for _, tt := range tests {
		if got := subjects.Matches(tt.filter, tt.subject); got != tt.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", tt.filter, tt.subject, got, tt.want)
		}
	}
}

// FuzzMatches holds Matches to the server's own matching for every valid
// filter and literal subject. A token that holds a wildcard among other
// characters ("*a") is a literal to a subscription, but the server's
// SubjectMatchesFilter reads it as a wildcard: such filters are left out.
func FuzzMatches(f *testing.F) {
	for _, s := range [][2]string{{"orders.*.created", "orders.o1.created"}, {"orders.>", "orders"}, {">", "a.b"}, {"a.*", "a.b.c"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, filter, subject string) {
		if !server.IsValidSubject(filter) || !server.IsValidLiteralSubject(subject) {
			return
		}
		for _, tok := range strings.Split(filter, ".") {
			if len(tok) > 1 && strings.ContainsAny(tok, "*>") {
				return
			}
		}
		if got, want := subjects.Matches(filter, subject), server.SubjectMatchesFilter(subject, filter); got != want {
			t.Fatalf("Matches(%q, %q) = %v, NATS says %v", filter, subject, got, want)
		}
	})
}

func TestTemplate(t *testing.T) {
	t.Parallel()
	tests := []struct{ subject, want string }{
		{"orders.o-1.created", "orders.*.created"},
		{"payments.p-1.refund.done", "payments.*.refund.done"},
		{"orders", "orders"},
		{"orders.o-1", "orders.o-1"},
	}
	for _, tt := range tests {
		if got := subjects.Template(tt.subject); got != tt.want {
			t.Errorf("Template(%q) = %q, want %q", tt.subject, got, tt.want)
		}
	}
}

func TestOrderID(t *testing.T) {
	t.Parallel()
	tests := []struct{ subject, want string }{
		{"orders.o-1.created", "o-1"},
		{"payments.p-1.refund.done", "p-1"},
		{"orders.o-1", ""},
		{"orders", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := subjects.OrderID(tt.subject); got != tt.want {
			t.Errorf("OrderID(%q) = %q, want %q", tt.subject, got, tt.want)
		}
	}
}
