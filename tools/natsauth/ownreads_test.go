package natsauth

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestPublishersReadTheirOwnEventsBySubject: a create-once publish that
// finds its subject taken reads the stored event back to tell a repeat from
// a conflict (events.Publisher), by direct get and, on a replicated stream,
// from the leader (natsconn.Streams.Last, natsconn.LeaderLast). Every
// producer may do both on its own stream. (Found by the end-to-end test:
// the payment service was refused the read of payments.<id>.succeeded.)
func TestPublishersReadTheirOwnEventsBySubject(t *testing.T) {
	s := startServer(t)
	admin := s.connect(t, Admin)
	setUp(t, admin)
	tests := []struct{ user, stream, subject string }{
		{"order-service", "ORDERS", "orders.o-1.created"},
		{"inventory-service", "INVENTORY", "inventory.o-1.reserved"},
		{"payment-service", "PAYMENTS", "payments.o-1.succeeded"},
		{"notification-service", "NOTIFICATIONS", "notifications.o-1.sent"},
	}
	ctx := context.Background()
	for _, tt := range tests {
		if _, err := admin.js.Publish(ctx, tt.subject, []byte(`{"by":"`+tt.user+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			t.Parallel()
			c := s.connect(t, tt.user)
			direct, err := c.nc.Request("$JS.API.DIRECT.GET."+tt.stream+"."+tt.subject, nil, time.Second)
			if err != nil || !strings.Contains(string(direct.Data), tt.user) {
				t.Fatalf("direct get of its own %s: %v %q", tt.subject, err, msgData(direct))
			}
			leader, err := c.nc.Request("$JS.API.STREAM.MSG.GET."+tt.stream, []byte(`{"last_by_subj":"`+tt.subject+`"}`), time.Second)
			if err != nil || !strings.Contains(string(leader.Data), `"message"`) {
				t.Fatalf("leader read of its own %s: %v %q", tt.subject, err, msgData(leader))
			}
		})
	}
}
