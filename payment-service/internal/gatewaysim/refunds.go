package gatewaysim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

const refundIDPrefix = "re_"

// Refund errors; the HTTP layer maps them to problems.
var (
	// ErrInvalidRefund: a malformed refund request.
	ErrInvalidRefund = errors.New("invalid refund request")
	// ErrChargeNotFound: the refund names a charge the processor never made.
	ErrChargeNotFound = errors.New("no such charge")
	// ErrNotRefundable: the charge was declined, or already refunded under
	// another idempotency key.
	ErrNotRefundable = errors.New("charge cannot be refunded")
)

// RefundRequest is the body of POST /refunds.
type RefundRequest struct {
	ChargeID    string `json:"charge_id"`
	AmountCents int64  `json:"amount_cents"`
}

// Validate reports a malformed request.
func (r RefundRequest) Validate() error {
	switch {
	case r.ChargeID == "" || len(r.ChargeID) > 128:
		return fmt.Errorf("%w: charge_id must be 1..128 characters", ErrInvalidRefund)
	case r.AmountCents <= 0:
		return fmt.Errorf("%w: amount_cents must be a positive integer", ErrInvalidRefund)
	}
	return nil
}

// Refund is the recorded result of a refund: the answer to POST /refunds.
type Refund struct {
	ID             string    `json:"id"`
	Status         string    `json:"status"`
	ChargeID       string    `json:"charge_id"`
	OrderID        string    `json:"order_id"`
	AmountCents    int64     `json:"amount_cents"`
	Currency       string    `json:"currency"`
	IdempotencyKey string    `json:"idempotency_key"`
	Created        time.Time `json:"created"`
}

// Refund gives a successful charge's money back, once. Like Charge, the
// first request with a key is processed and its answer stored, and every
// later one gets that answer with Replayed set; simulated outages store
// nothing. A charge is refunded at most once whatever the keys: a second
// refund of it under another key is ErrNotRefundable. Refusals (unknown
// charge, declined charge, amount above the charge) are not stored, so they
// are answered afresh each time.
func (s *Simulator) Refund(ctx context.Context, key string, req RefundRequest) (Response, error) {
	if key == "" {
		return Response{}, ErrMissingIdempotencyKey
	}
	if len(key) > maxIdempotencyKeyLen {
		return Response{}, fmt.Errorf("%w: Idempotency-Key longer than %d", ErrInvalidRefund, maxIdempotencyKeyLen)
	}
	set, err := s.health()
	if err != nil {
		return Response{}, err
	}
	if err := req.Validate(); err != nil {
		return Response{}, err
	}
	resp, err := s.refundOnce(key, req)
	if err != nil {
		return Response{}, err
	}
	if set.Mode == ModeSlow {
		s.sleep(ctx, time.Duration(set.LatencyMS)*time.Millisecond)
	}
	return resp, nil
}

func (s *Simulator) refundOnce(key string, req RefundRequest) (Response, error) {
	request, err := fingerprint(req)
	if err != nil {
		return Response{}, err
	}
	e := s.acquire(s.refundKeys, key)
	defer s.release(s.refundKeys, key, e)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.resp != nil {
		return replay(e, request)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.byID[req.ChargeID]
	switch {
	case !ok:
		return Response{}, fmt.Errorf("%w: %s", ErrChargeNotFound, req.ChargeID)
	case ch.Status != StatusSucceeded:
		return Response{}, fmt.Errorf("%w: charge %s was %s", ErrNotRefundable, ch.ID, ch.Status)
	case ch.Refunded:
		return Response{}, fmt.Errorf("%w: charge %s was already refunded (%s)", ErrNotRefundable, ch.ID, ch.RefundID)
	case req.AmountCents > ch.AmountCents:
		return Response{}, fmt.Errorf("%w: amount_cents %d exceeds the charge's %d", ErrInvalidRefund, req.AmountCents, ch.AmountCents)
	}
	rf := Refund{
		ID:             refundIDPrefix + s.newID(),
		Status:         StatusSucceeded,
		ChargeID:       ch.ID,
		OrderID:        ch.OrderID,
		AmountCents:    req.AmountCents,
		Currency:       ch.Currency,
		IdempotencyKey: key,
		Created:        s.now().UTC(),
	}
	body, err := json.Marshal(rf)
	if err != nil {
		return Response{}, fmt.Errorf("encode refund: %w", err)
	}
	ch.Refunded, ch.RefundID = true, rf.ID
	e.resp, e.request = &Response{Status: http.StatusCreated, Body: body}, request
	s.refundQueue = append(s.refundQueue, key)
	for len(s.refundQueue) > s.maxCharges {
		delete(s.refundKeys, s.refundQueue[0])
		s.refundQueue = s.refundQueue[1:]
	}
	return *e.resp, nil
}
