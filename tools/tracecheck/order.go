package tracecheck

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Shop is where the order goes: the order and inventory services' URLs and
// the admin token that may stock a SKU.
type Shop struct {
	Client       *http.Client
	OrderURL     string
	InventoryURL string
	AdminToken   string
}

// Placed is an order placed and followed to its final state.
type Placed struct {
	OrderID string
	TraceID string // from the 202's traceparent
	Status  string // CONFIRMED or CANCELLED
}

// PlaceOrder stocks a new SKU, orders one unit of it, and waits until the
// order is final.
func (s Shop) PlaceOrder(ctx context.Context) (Placed, error) {
	suffix := randomHex(6)
	sku := "TRACE-" + suffix
	if _, _, err := s.do(ctx, http.MethodPut, s.InventoryURL+"/inventory/"+sku,
		map[string]any{"name": "Trace check " + suffix, "price_cents": 500, "currency": "USD", "available": 1},
		map[string]string{"Authorization": "Bearer " + s.AdminToken}, http.StatusOK, http.StatusCreated); err != nil {
		return Placed{}, fmt.Errorf("stock %s: %w", sku, err)
	}
	var created struct {
		OrderID string `json:"order_id"`
	}
	body, hdr, err := s.do(ctx, http.MethodPost, s.OrderURL+"/orders",
		map[string]any{"customer_id": "trace-check", "payment_token": "tok_visa", "items": []map[string]any{{"sku": sku, "quantity": 1}}},
		map[string]string{"Idempotency-Key": "trace-check-" + suffix}, http.StatusAccepted)
	if err != nil {
		return Placed{}, fmt.Errorf("place an order: %w", err)
	}
	if err := json.Unmarshal(body, &created); err != nil || created.OrderID == "" {
		return Placed{}, fmt.Errorf("place an order: answer %q has no order id", body)
	}
	tp := strings.Split(hdr.Get("traceparent"), "-")
	if len(tp) != 4 || len(tp[1]) != 32 {
		return Placed{}, fmt.Errorf("order %s: the 202 carries no traceparent (%q)", created.OrderID, hdr.Get("traceparent"))
	}
	p := Placed{OrderID: created.OrderID, TraceID: tp[1]}
	for {
		body, _, err := s.do(ctx, http.MethodGet, s.OrderURL+"/orders/"+p.OrderID, nil, nil, http.StatusOK)
		if err == nil {
			var o struct {
				Status string `json:"status"`
			}
			if json.Unmarshal(body, &o) == nil && (o.Status == "CONFIRMED" || o.Status == "CANCELLED") {
				p.Status = o.Status
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			return p, fmt.Errorf("order %s is not final: %w", p.OrderID, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s Shop) do(ctx context.Context, method, url string, in any, headers map[string]string, want ...int) ([]byte, http.Header, error) {
	var rd io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, nil, err
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return body, resp.Header, nil
		}
	}
	return nil, nil, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(body)))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
