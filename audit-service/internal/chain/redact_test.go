package chain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	key := []byte(strings.Repeat("k", MinKeyLen))
	r, err := NewRedactor(key)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("tok_visa"))
	fingerprint := "hmac-sha256:" + hex.EncodeToString(mac.Sum(nil))
	tests := []struct {
		name      string
		in        string
		wantSame  bool
		wantToken string
		wantErr   error
	}{
		{name: "created event", in: `{"id":"e1","type":"shop.order.created","data":{"order_id":"o-1","payment_token":"tok_visa","items":[{"sku":"S","quantity":1}]}}`, wantToken: fingerprint},
		{name: "no secret", in: `{"id":"e2","type":"shop.order.confirmed","data":{"order_id":"o-1"}}`, wantSame: true},
		{name: "no data", in: `{"id":"e3"}`, wantSame: true},
		{name: "not an object", in: `[1,2]`, wantErr: ErrInvalidRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := r.Redact([]byte(tt.in))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Redact = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantSame {
				if string(out) != tt.in {
					t.Fatalf("Redact changed an event without secrets:\n%s\n%s", tt.in, out)
				}
				return
			}
			if strings.Contains(string(out), "tok_visa") {
				t.Fatalf("token still in the clear: %s", out)
			}
			var ev struct {
				ID   string `json:"id"`
				Data struct {
					OrderID      string `json:"order_id"`
					PaymentToken string `json:"payment_token"`
					Items        []any  `json:"items"`
				} `json:"data"`
			}
			if err := json.Unmarshal(out, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.ID != "e1" || ev.Data.OrderID != "o-1" || len(ev.Data.Items) != 1 || ev.Data.PaymentToken != tt.wantToken {
				t.Fatalf("redacted event = %+v, want everything kept but the token, which becomes %s", ev, tt.wantToken)
			}
		})
	}
}

// TestFingerprintCannotBeRecomputedWithoutTheKey: a plain SHA-256 of a
// guessable token (the fingerprint the trail used to hold) is not what the
// trail holds, and another key gives another fingerprint.
func TestFingerprintCannotBeRecomputedWithoutTheKey(t *testing.T) {
	a, err := NewRedactor([]byte(strings.Repeat("a", MinKeyLen)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewRedactor([]byte(strings.Repeat("b", MinKeyLen)))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("tok_visa"))
	plain := hex.EncodeToString(sum[:])
	fa, fb := a.Fingerprint("tok_visa"), b.Fingerprint("tok_visa")
	if strings.Contains(fa, plain) || fa == fb || fa != a.Fingerprint("tok_visa") {
		t.Fatalf("fingerprints %s, %s: want stable per key, different across keys, not sha256 %s", fa, fb, plain)
	}
	if _, err := NewRedactor([]byte("short")); !errors.Is(err, ErrShortKey) {
		t.Fatalf("NewRedactor(short key) = %v, want ErrShortKey", err)
	}
}

// A shipping address (order.created and order.confirmed v2) is personal
// data: the append-only trail holds its fingerprint, never the address.
func TestRedactShippingAddress(t *testing.T) {
	key := []byte(strings.Repeat("k", MinKeyLen))
	r, err := NewRedactor(key)
	if err != nil {
		t.Fatal(err)
	}
	address := `{"name":"Ada Lovelace","line1":"12 St James's Square","city":"London","postal_code":"SW1Y 4JH","country":"GB"}`
	for _, in := range []string{
		`{"id":"e1","type":"shop.order.created","data":{"order_id":"o-1","payment_token":"tok_visa","shipping_address":` + address + `}}`,
		`{"id":"e2","type":"shop.order.confirmed","data":{"order_id":"o-1","total_cents":1,"currency":"USD","shipping_address":` + address + `}}`,
	} {
		out, err := r.Redact([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		for _, clear := range []string{"Lovelace", "London", "SW1Y", "tok_visa"} {
			if strings.Contains(string(out), clear) {
				t.Errorf("%q still in the clear: %s", clear, out)
			}
		}
		var ev struct {
			Data struct {
				OrderID         string `json:"order_id"`
				ShippingAddress string `json:"shipping_address"`
			} `json:"data"`
		}
		if err := json.Unmarshal(out, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Data.OrderID != "o-1" || ev.Data.ShippingAddress != r.Fingerprint(address) {
			t.Errorf("redacted data = %+v, want the order and the address's fingerprint", ev.Data)
		}
	}
}
