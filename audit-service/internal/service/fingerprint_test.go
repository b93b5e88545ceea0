package service_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/eventshop/audit-service/internal/httpapi"
	"github.com/eventshop/shared/events"
)

// TestTimelineDoesNotDiscloseThePaymentToken: the public timeline holds the
// created event's payment token neither in the clear nor as its plain
// SHA-256 (tokens are guessable: hashing tok_visa finds it). With
// AUDIT_FINGERPRINT_KEY set the fingerprint is the HMAC under that key, the
// same after a restart; without it, a random key stands in.
func TestTimelineDoesNotDiscloseThePaymentToken(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("tok_visa"))
	plain := hex.EncodeToString(sum[:])
	const key = "audit-test-fingerprint-key-0123456789"
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte("tok_visa"))
	keyed := "hmac-sha256:" + hex.EncodeToString(mac.Sum(nil))

	// token returns the payment_token of orderID's created event as the
	// timeline serves it, after checking the whole body discloses nothing.
	token := func(t *testing.T, in *instance, orderID string) string {
		t.Helper()
		var tl httpapi.Timeline
		in.getJSON(t, "/audit/orders/"+orderID, http.StatusOK, &tl)
		body, err := json.Marshal(tl)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(body), "tok_visa") || strings.Contains(string(body), plain) {
			t.Fatalf("timeline of %s discloses the token (in the clear or as sha256 %s): %s", orderID, plain, body)
		}
		for _, e := range tl.Entries {
			if e.Type != string(events.OrderCreated) {
				continue
			}
			var d struct {
				PaymentToken string `json:"payment_token"`
			}
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			return d.PaymentToken
		}
		t.Fatalf("timeline of %s has no created event", orderID)
		return ""
	}

	t.Run("configured key", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		first := w.start(t, map[string]string{"AUDIT_FINGERPRINT_KEY": key})
		w.saga(t, "o-1")
		first.waitEntries(t, 5)
		if got := token(t, first, "o-1"); got != keyed {
			t.Fatalf("fingerprint = %q, want the HMAC under the configured key %q", got, keyed)
		}
		first.Stop()
		second := w.start(t, map[string]string{"AUDIT_FINGERPRINT_KEY": key})
		w.saga(t, "o-2")
		second.waitEntries(t, 10)
		if got := token(t, second, "o-2"); got != keyed {
			t.Fatalf("fingerprint after a restart = %q, want %q again", got, keyed)
		}
	})
	t.Run("no key", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		in := w.start(t)
		w.saga(t, "o-1")
		in.waitEntries(t, 5)
		if got := token(t, in, "o-1"); !strings.HasPrefix(got, "hmac-sha256:") || got == keyed {
			t.Fatalf("fingerprint = %q, want an HMAC under a random key", got)
		}
	})
}
