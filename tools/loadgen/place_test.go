package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/eventshop/shared/api"
)

// TestPlaceRetriesOnTheNextInstance: a POST that reaches an order-service
// instance that is down (being replaced) is sent again, with the same
// Idempotency-Key, to the next instance; the order is accepted once and
// the retry counted.
func TestPlaceRetriesOnTheNextInstance(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var keys []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"order_id":"o-1"}`)
	}))
	t.Cleanup(up.Close)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // refuses connections, as a stopped instance does

	for _, retry := range []time.Duration{0, 5 * time.Second} {
		r, err := New(Config{OrderURL: up.URL, MoreOrderURLs: []string{down.URL}, InventoryURL: up.URL, AdminToken: "t", PostRetry: retry}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		// The first POST goes to the second instance (the one down).
		r.place(context.Background(), &placed{lines: []api.Item{{SKU: "s", Quantity: 1}}}, time.Now(), "key-1")
		rep := r.report(time.Now(), time.Second, 0)
		switch {
		case retry == 0 && (rep.Accepted != 0 || rep.Rejected != 1 || rep.Retried != 0):
			t.Fatalf("without retries: accepted %d, refused %d, retried %d; want the POST refused", rep.Accepted, rep.Rejected, rep.Retried)
		case retry > 0 && (rep.Accepted != 1 || rep.Rejected != 0 || rep.Retried != 1):
			t.Fatalf("with retries: accepted %d, refused %d, retried %d; want it accepted after one retry", rep.Accepted, rep.Rejected, rep.Retried)
		}
	}
	if len(keys) != 1 || keys[0] != "key-1" {
		t.Fatalf("the instance up saw keys %q, want the one POST with key-1", keys)
	}
}
