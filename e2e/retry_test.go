package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventshop/shared/api"
)

// testRetryScheduleRedelivers: a webhook receiver that keeps failing makes
// the notification consumer give the message back with NakWithDelay (its
// retry schedule) rather than drop it or block; once the receiver recovers,
// the notification is delivered exactly once, signed, and the redeliveries
// show as attempts and as retry outcomes in the consumer metrics.
func testRetryScheduleRedelivers(t *testing.T) {
	const secret = "e2e-webhook-secret"
	sku := uniq("RETRY")
	putSKU(t, sku, 300, 10)
	customer := uniq("c")

	var mu sync.Mutex
	failures := 0 // posts refused for this test's order
	var delivered []string
	var badSignature bool
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), `"customer_id":"`+customer+`"`) {
			w.WriteHeader(http.StatusOK) // another test's notification
			return
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("X-Eventshop-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			badSignature = true
		}
		// Refuse long enough that the channel's own quick retries give
		// up more than once and the consumer must redeliver.
		if failures < 8 {
			failures++
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		delivered = append(delivered, r.Header.Get("X-Eventshop-Notification-Id"))
		w.WriteHeader(http.StatusOK)
	}))
	defer receiver.Close()

	notifier := sys.procs["notification-service"]
	env := notifier.Env
	notifier.Env = append(slices.Clone(env),
		"NOTIFY_CHANNEL=webhook", "NOTIFY_WEBHOOK_URL="+receiver.URL, "NOTIFY_WEBHOOK_SECRET="+secret,
		"NOTIFY_WEBHOOK_INITIAL_INTERVAL=20ms", "NOTIFY_WEBHOOK_MAX_ELAPSED=100ms")
	sys.restart(t, "notification-service", false)
	defer func() {
		notifier.Env = env
		sys.restart(t, "notification-service", false)
	}()

	id := postOrder(t, api.CreateOrderRequest{CustomerID: customer, Items: []api.Item{{SKU: sku, Quantity: 1}}, PaymentToken: "tok_visa"}, "")
	checkSaga(t, waitFinal(t, id, 20*time.Second), "CONFIRMED", confirmedTypes...)
	eventually(t, 30*time.Second, "notification delivered after the receiver recovered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) > 0
	})
	var ns []api.Notification
	eventually(t, 10*time.Second, "notification recorded as sent", func() bool {
		ns = notifications(t, id)
		return len(ns) == 1 && ns[0].Status == "sent"
	})
	if ns[0].Attempts < 2 {
		t.Fatalf("notification %+v: want at least 2 attempts (redelivered by the retry schedule)", ns[0])
	}
	time.Sleep(500 * time.Millisecond) // a duplicate delivery would show by now
	mu.Lock()
	if len(delivered) != 1 || badSignature || failures != 8 {
		t.Fatalf("receiver: %d deliveries %v, bad signature %v, %d refusals; want one signed delivery after 8 refusals",
			len(delivered), delivered, badSignature, failures)
	}
	mu.Unlock()
	resp, err := http.Get(sys.urls["notification-service"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(metrics), `consumer="notification-orders",outcome="retry"`) {
		t.Fatalf("notification metrics lack retry outcomes:\n%s", metrics)
	}
}
