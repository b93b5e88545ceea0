package channel_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/notification-service/internal/channel"
	"github.com/eventshop/notification-service/internal/notification"
)

// receiver is a webhook endpoint answering a scripted sequence of status
// codes (the last one repeats) and recording what it received.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	calls    int
	bodies   [][]byte
	headers  []http.Header
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	status := r.statuses[min(r.calls, len(r.statuses)-1)]
	r.calls++
	r.bodies = append(r.bodies, body)
	r.headers = append(r.headers, req.Header.Clone())
	w.WriteHeader(status)
}

func testNotification() notification.Notification {
	total := int64(2598)
	return notification.Notification{
		ID:      notification.ID("o-1", notification.KindOrderConfirmed),
		OrderID: "o-1", Kind: notification.KindOrderConfirmed, Channel: "webhook", Status: notification.StatusPending,
		Attempts: 1, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		Payload:   notification.Payload{OrderID: "o-1", Kind: notification.KindOrderConfirmed, CustomerID: "c-1", TotalCents: &total, Currency: "EUR"},
		CreatedAt: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC),
	}
}

func TestWebhookSend(t *testing.T) {
	t.Parallel()
	const secret = "s3cret"
	tests := []struct {
		name      string
		statuses  []int
		wantCalls int
		wantErr   error // nil: delivered
		transient bool  // an error that is not ErrRejected
	}{
		{name: "accepted at once", statuses: []int{200}, wantCalls: 1},
		{name: "any 2xx is accepted", statuses: []int{204}, wantCalls: 1},
		{name: "fails twice then accepted", statuses: []int{503, 500, 200}, wantCalls: 3},
		{name: "408 and 429 are retried", statuses: []int{408, 429, 202}, wantCalls: 3},
		{name: "400 is permanent", statuses: []int{400}, wantCalls: 1, wantErr: notification.ErrRejected},
		{name: "410 after a 503 is permanent", statuses: []int{503, 410}, wantCalls: 2, wantErr: notification.ErrRejected},
		{name: "redirect is not followed and is permanent", statuses: []int{302}, wantCalls: 1, wantErr: notification.ErrRejected},
		{name: "always 503 gives up after max elapsed", statuses: []int{503}, transient: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rcv := &receiver{statuses: tt.statuses}
			srv := httptest.NewServer(rcv)
			t.Cleanup(srv.Close)
			wh, err := channel.NewWebhook(srv.URL, secret, zap.NewNop(), channel.WithRetry(5*time.Millisecond, 300*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			n := testNotification()
			err = wh.Send(context.Background(), n)
			switch {
			case tt.transient:
				if err == nil || errors.Is(err, notification.ErrRejected) {
					t.Fatalf("Send = %v, want a transient error", err)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Send = %v, want %v", err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("Send = %v, want delivered", err)
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if tt.wantCalls > 0 && rcv.calls != tt.wantCalls {
				t.Fatalf("receiver got %d calls, want %d", rcv.calls, tt.wantCalls)
			}
			for i, body := range rcv.bodies {
				h := rcv.headers[i]
				if got, want := h.Get(channel.HeaderSignature), channel.Sign([]byte(secret), body); got != want {
					t.Errorf("call %d: signature %q, want %q", i, got, want)
				}
				if got := h.Get(channel.HeaderNotificationID); got != n.ID {
					t.Errorf("call %d: notification id %q, want %q", i, got, n.ID)
				}
				if string(body) != string(rcv.bodies[0]) {
					t.Errorf("call %d: body differs between attempts", i)
				}
				var b channel.Body
				if err := json.Unmarshal(body, &b); err != nil || b.NotificationID != n.ID || *b.Payload.TotalCents != 2598 {
					t.Errorf("call %d: body %s (%v)", i, body, err)
				}
			}
		})
	}
}

func TestSignIsHMACSHA256(t *testing.T) {
	t.Parallel()
	// Reference value: printf '%s' '{"a":1}' | openssl dgst -sha256 -hmac key
	got := channel.Sign([]byte("key"), []byte(`{"a":1}`))
	want := "sha256=88a67f24bbcdaed0e6c997404bb79a743baf44c6bab2f4c27328e3009d22e342"
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestNewWebhookRejectsBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		url  string
		opts []channel.WebhookOption
	}{
		{name: "no url", url: ""},
		{name: "nil client", url: "http://x", opts: []channel.WebhookOption{channel.WithHTTPClient(nil)}},
		{name: "zero initial interval", url: "http://x", opts: []channel.WebhookOption{channel.WithRetry(0, time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := channel.NewWebhook(tt.url, "s", zap.NewNop(), tt.opts...); err == nil {
				t.Fatal("NewWebhook accepted bad input")
			}
		})
	}
}
