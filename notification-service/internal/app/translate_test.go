package app

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/shared/events"
)

func envelope(t *testing.T, typ events.Type, data any) events.Envelope {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return events.Envelope{ID: "e-1", Type: typ, Subject: "o-1", Data: raw, DataSchema: events.SchemaURI(typ, 1),
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
}

// v2 is the envelope of a v2 event.
func v2(env events.Envelope) events.Envelope {
	env.DataSchema = events.SchemaURI(env.Type, 2)
	return env
}

func TestNotificationOf(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		env     events.Envelope
		want    notification.Payload
		wantErr error
	}{
		{
			name: "confirmed",
			env:  envelope(t, events.OrderConfirmed, events.OrderConfirmedData{OrderID: "o-1", CustomerID: "c-1", TotalCents: 0, Currency: "USD"}),
			want: notification.Payload{OrderID: "o-1", Kind: notification.KindOrderConfirmed, CustomerID: "c-1", Currency: "USD"},
		},
		{
			name: "confirmed v2: where it ships",
			env: v2(envelope(t, events.OrderConfirmed, events.OrderConfirmedData{OrderID: "o-1", CustomerID: "c-1", TotalCents: 0, Currency: "USD",
				ShippingAddress: &events.Address{Name: "Ada", Line1: "1 Main St", City: "Paris", PostalCode: "75001", Country: "FR"}})),
			want: notification.Payload{OrderID: "o-1", Kind: notification.KindOrderConfirmed, CustomerID: "c-1", Currency: "USD",
				ShipTo: &notification.Address{Name: "Ada", Line1: "1 Main St", City: "Paris", PostalCode: "75001", Country: "FR"}},
		},
		{
			name: "confirmed v1 with an address it cannot have",
			env: envelope(t, events.OrderConfirmed, events.OrderConfirmedData{OrderID: "o-1", CustomerID: "c-1", TotalCents: 0, Currency: "USD",
				ShippingAddress: &events.Address{Name: "Ada", Line1: "1 Main St", City: "Paris", PostalCode: "75001", Country: "FR"}}),
			wantErr: events.ErrInvalidEvent,
		},
		{
			name: "cancelled",
			env:  envelope(t, events.OrderCancelled, events.OrderCancelledData{OrderID: "o-1", CustomerID: "c-1", Reason: events.ReasonPaymentDeclined, Detail: "card"}),
			want: notification.Payload{OrderID: "o-1", Kind: notification.KindOrderCancelled, CustomerID: "c-1", Reason: events.ReasonPaymentDeclined, Detail: "card"},
		},
		{
			name:    "created is not a final transition",
			env:     envelope(t, events.OrderCreated, events.OrderCreatedData{OrderID: "o-1"}),
			wantErr: notification.ErrUnsupportedEvent,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n, err := notificationOf(tt.env, "log", now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.ID != notification.ID("o-1", tt.want.Kind) || n.Status != notification.StatusPending ||
				n.Key() != "o-1."+string(tt.want.Kind) || n.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Fatalf("notification = %+v", n)
			}
			got := n.Payload
			if tt.want.Kind == notification.KindOrderConfirmed {
				// A free order still says its total: zero, not absent.
				if got.TotalCents == nil || *got.TotalCents != 0 {
					t.Fatalf("total = %v, want 0", got.TotalCents)
				}
				got.TotalCents = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("payload = %+v, want %+v", got, tt.want)
			}
		})
	}
}
