// Package gatewaysim is an in-memory stand-in for a card processor, used by
// local runs, end-to-end tests and the payment service's component tests. It
// speaks a Stripe-like dialect: test tokens decide the outcome, every charge
// and every refund needs an Idempotency-Key and a replay of a key returns the
// first answer (a key reused with a different request is refused 422), a
// charge is refunded at most once, and an admin endpoint switches it between
// healthy, down, slow and flaky. Charges and refunds need the payment
// service's API key, the admin and listing routes the admin token; the state
// it keeps is bounded (the oldest charges are forgotten first).
package gatewaysim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Test tokens; any other token is declined with DeclineInvalidToken.
const (
	TokenVisa              = "tok_visa"
	TokenMastercard        = "tok_mastercard"
	TokenAmex              = "tok_amex"
	TokenDeclined          = "tok_chargeDeclined"
	TokenInsufficientFunds = "tok_chargeDeclinedInsufficientFunds"
)

// Charge statuses and decline codes.
const (
	StatusSucceeded          = "succeeded"
	StatusDeclined           = "declined"
	DeclineCardDeclined      = "card_declined"
	DeclineInsufficientFunds = "insufficient_funds"
	DeclineInvalidToken      = "invalid_token"
)

// HTTP headers of the idempotency protocol.
const (
	HeaderIdempotencyKey     = "Idempotency-Key"
	HeaderIdempotentReplayed = "Idempotent-Replayed"
)

const (
	maxLatency           = 10 * time.Minute
	maxIdempotencyKeyLen = 255
	chargeIDPrefix       = "ch_"
	// DefaultMaxCharges is how many charges (and, separately, refunds) the
	// simulator remembers before it forgets the oldest.
	DefaultMaxCharges = 100_000
)

// Mode is the simulated health of the processor.
type Mode string

// The modes.
const (
	// ModeHealthy answers every charge at once.
	ModeHealthy Mode = "healthy"
	// ModeDown answers every charge 503 and records nothing.
	ModeDown Mode = "down"
	// ModeSlow records the charge, then waits LatencyMS before answering
	// (a client that times out has been charged: its retry must replay).
	ModeSlow Mode = "slow"
	// ModeFlaky answers a fraction ErrorRate of charges 500 and records
	// nothing for them.
	ModeFlaky Mode = "flaky"
)

// Sentinel errors; the HTTP layer maps them to problems.
var (
	// ErrMissingIdempotencyKey: POST /charges or /refunds without the header.
	ErrMissingIdempotencyKey = errors.New("missing Idempotency-Key header")
	// ErrInvalidCharge: a malformed charge request.
	ErrInvalidCharge = errors.New("invalid charge request")
	// ErrInvalidMode: a malformed mode.
	ErrInvalidMode = errors.New("invalid mode")
	// ErrDown: the processor is (simulated) down.
	ErrDown = errors.New("payment processor unavailable")
	// ErrFlaky: a (simulated) internal failure.
	ErrFlaky = errors.New("payment processor internal error")
	// ErrInvalidOption: an option given a value it cannot use.
	ErrInvalidOption = errors.New("invalid option")
	// ErrKeyReused: an Idempotency-Key already used with a different
	// request (Stripe answers 422): never a replay of someone else's answer.
	ErrKeyReused = errors.New("idempotency key reused with a different request")
)

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// Settings is the current mode and its parameters.
type Settings struct {
	Mode      Mode    `json:"mode"`
	LatencyMS int64   `json:"latency_ms"`
	ErrorRate float64 `json:"error_rate"`
}

// Validate reports settings that cannot be applied.
func (s Settings) Validate() error {
	switch s.Mode {
	case ModeHealthy, ModeDown, ModeSlow, ModeFlaky:
	default:
		return fmt.Errorf("%w: mode %q (want healthy, down, slow or flaky)", ErrInvalidMode, s.Mode)
	}
	if s.LatencyMS < 0 || time.Duration(s.LatencyMS)*time.Millisecond > maxLatency {
		return fmt.Errorf("%w: latency_ms %d (want 0..%d)", ErrInvalidMode, s.LatencyMS, maxLatency.Milliseconds())
	}
	if s.Mode == ModeSlow && s.LatencyMS == 0 {
		return fmt.Errorf("%w: slow mode needs latency_ms > 0", ErrInvalidMode)
	}
	if s.ErrorRate < 0 || s.ErrorRate > 1 {
		return fmt.Errorf("%w: error_rate %v (want 0..1)", ErrInvalidMode, s.ErrorRate)
	}
	return nil
}

// ChargeRequest is the body of POST /charges.
type ChargeRequest struct {
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	Token       string `json:"token"`
}

// Validate reports a malformed request.
func (r ChargeRequest) Validate() error {
	switch {
	case r.OrderID == "" || len(r.OrderID) > 128:
		return fmt.Errorf("%w: order_id must be 1..128 characters", ErrInvalidCharge)
	case r.AmountCents <= 0:
		return fmt.Errorf("%w: amount_cents must be a positive integer", ErrInvalidCharge)
	case !currencyPattern.MatchString(r.Currency):
		return fmt.Errorf("%w: currency must be three upper-case letters", ErrInvalidCharge)
	case r.Token == "" || len(r.Token) > 256:
		return fmt.Errorf("%w: token must be 1..256 characters", ErrInvalidCharge)
	}
	return nil
}

// Charge is the recorded result of one charge attempt. Refunded and
// RefundID change when the charge is refunded (GET /charges shows them); the
// answer to the charge request itself is frozen as it was first given.
type Charge struct {
	ID             string    `json:"id"`
	Status         string    `json:"status"`
	DeclineCode    string    `json:"decline_code,omitempty"`
	OrderID        string    `json:"order_id"`
	AmountCents    int64     `json:"amount_cents"`
	Currency       string    `json:"currency"`
	IdempotencyKey string    `json:"idempotency_key"`
	Created        time.Time `json:"created"`
	Refunded       bool      `json:"refunded"`
	RefundID       string    `json:"refund_id,omitempty"`
}

// Response is the answer to a charge: the HTTP status and the exact body,
// stored so that a replay is byte-for-byte the first answer.
type Response struct {
	Status   int
	Body     []byte
	Replayed bool
}

// OrderCharges is the answer to GET /charges?order_id=. Succeeded counts
// the successful charges, refunded or not; Refunded counts those of them
// that were refunded, so Succeeded - Refunded is what the customer paid.
type OrderCharges struct {
	OrderID   string   `json:"order_id"`
	Charges   []Charge `json:"charges"`
	Succeeded int      `json:"succeeded"`
	Refunded  int      `json:"refunded"`
}

// keyEntry serialises requests with one idempotency key and holds the first
// answer and the request it answered (its JSON), so that a reuse of the key
// with another request is refused. refs counts the requests holding the
// entry (guarded by Simulator.mu): an entry without an answer is dropped
// when the last one lets go.
type keyEntry struct {
	mu      sync.Mutex
	resp    *Response
	request string
	refs    int
}

// Simulator is the processor's state. It is safe for concurrent use.
type Simulator struct {
	now   func() time.Time
	newID func() string
	rand  func() float64
	sleep func(ctx context.Context, d time.Duration)

	// maxCharges bounds the charges kept, and the refund keys kept:
	// past it the oldest is forgotten (its key, its charge, its listing).
	maxCharges int

	mu          sync.Mutex
	settings    Settings
	keys        map[string]*keyEntry // charge idempotency keys
	refundKeys  map[string]*keyEntry // refund idempotency keys
	byOrder     map[string][]*Charge
	byID        map[string]*Charge
	chargeQueue []*Charge // every kept charge, oldest first
	refundQueue []string  // every kept refund key, oldest first
}

// Option configures a Simulator.
type Option func(*Simulator) error

// WithClock sets the clock used for charge timestamps.
func WithClock(now func() time.Time) Option {
	return func(s *Simulator) error {
		if now == nil {
			return fmt.Errorf("clock: %w", ErrInvalidOption)
		}
		s.now = now
		return nil
	}
}

// WithRand sets the source of uniform [0,1) numbers deciding flaky failures.
func WithRand(f func() float64) Option {
	return func(s *Simulator) error {
		if f == nil {
			return fmt.Errorf("rand: %w", ErrInvalidOption)
		}
		s.rand = f
		return nil
	}
}

// WithIDSource sets the charge id generator (the part after "ch_").
func WithIDSource(newID func() string) Option {
	return func(s *Simulator) error {
		if newID == nil {
			return fmt.Errorf("id source: %w", ErrInvalidOption)
		}
		s.newID = newID
		return nil
	}
}

// WithMaxCharges bounds the simulator's memory: it keeps at most n charges
// (with their idempotency keys) and n refund keys, and forgets the oldest
// first (default DefaultMaxCharges). A key older than that is processed
// afresh, like a real processor's idempotency window of 24 hours.
func WithMaxCharges(n int) Option {
	return func(s *Simulator) error {
		if n < 1 {
			return fmt.Errorf("max charges %d: %w", n, ErrInvalidOption)
		}
		s.maxCharges = n
		return nil
	}
}

// New returns a healthy simulator with no charges.
func New(opts ...Option) (*Simulator, error) {
	s := &Simulator{
		now:        time.Now,
		newID:      func() string { return uuid.NewString() },
		rand:       rand.Float64,
		sleep:      sleepCtx,
		maxCharges: DefaultMaxCharges,
		settings:   Settings{Mode: ModeHealthy},
		keys:       map[string]*keyEntry{},
		refundKeys: map[string]*keyEntry{},
		byOrder:    map[string][]*Charge{},
		byID:       map[string]*Charge{},
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Settings returns the current mode.
func (s *Simulator) Settings() Settings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settings
}

// SetSettings switches the mode.
func (s *Simulator) SetSettings(set Settings) error {
	if err := set.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	s.settings = set
	s.mu.Unlock()
	return nil
}

// Charge handles one charge request under an idempotency key: the first
// request with a key is processed and its answer stored; every later one
// (even concurrent) gets the stored answer with Replayed set. Simulated
// outages (down, flaky) answer with an error and store nothing, so the
// client's retry with the same key is processed normally.
func (s *Simulator) Charge(ctx context.Context, key string, req ChargeRequest) (Response, error) {
	if key == "" {
		return Response{}, ErrMissingIdempotencyKey
	}
	if len(key) > maxIdempotencyKeyLen {
		return Response{}, fmt.Errorf("%w: Idempotency-Key longer than %d", ErrInvalidCharge, maxIdempotencyKeyLen)
	}
	set, err := s.health()
	if err != nil {
		return Response{}, err
	}
	if err := req.Validate(); err != nil {
		return Response{}, err
	}
	resp, err := s.chargeOnce(key, req)
	if err != nil {
		return Response{}, err
	}
	if set.Mode == ModeSlow {
		s.sleep(ctx, time.Duration(set.LatencyMS)*time.Millisecond)
	}
	return resp, nil
}

// health applies the simulated outage modes: down and flaky (for the drawn
// fraction) fail the request before anything is recorded.
func (s *Simulator) health() (Settings, error) {
	set := s.Settings()
	switch set.Mode {
	case ModeDown:
		return set, ErrDown
	case ModeFlaky:
		if s.rand() < set.ErrorRate {
			return set, ErrFlaky
		}
	}
	return set, nil
}

// acquire returns the idempotency entry of key in keys, creating it, and
// holds it until release.
func (s *Simulator) acquire(keys map[string]*keyEntry, key string) *keyEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := keys[key]
	if !ok {
		e = &keyEntry{}
		keys[key] = e
	}
	e.refs++
	return e
}

// release lets go of an entry taken with acquire (after e.mu is unlocked):
// an entry that holds no answer (the request was refused) is dropped with
// its last holder, so refusals leave nothing behind.
func (s *Simulator) release(keys map[string]*keyEntry, key string, e *keyEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.refs--
	if e.refs == 0 && e.resp == nil && keys[key] == e {
		delete(keys, key)
	}
}

// replay answers a key seen before: the stored answer if the request is the
// one it answered, ErrKeyReused otherwise. Called with e.mu held.
func replay(e *keyEntry, request string) (Response, error) {
	if e.request != request {
		return Response{}, fmt.Errorf("%w: this Idempotency-Key was first used with another request; use a new key for a new request", ErrKeyReused)
	}
	r := *e.resp
	r.Replayed = true
	return r, nil
}

// fingerprint is the request as JSON: what a replay must repeat exactly.
func fingerprint(req any) (string, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("encode request: %w", err)
	}
	return string(b), nil
}

func (s *Simulator) chargeOnce(key string, req ChargeRequest) (Response, error) {
	request, err := fingerprint(req)
	if err != nil {
		return Response{}, err
	}
	e := s.acquire(s.keys, key)
	defer s.release(s.keys, key, e)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.resp != nil {
		return replay(e, request)
	}
	ch := Charge{
		ID:             chargeIDPrefix + s.newID(),
		OrderID:        req.OrderID,
		AmountCents:    req.AmountCents,
		Currency:       req.Currency,
		IdempotencyKey: key,
		Created:        s.now().UTC(),
	}
	status := 201
	switch req.Token {
	case TokenVisa, TokenMastercard, TokenAmex:
		ch.Status = StatusSucceeded
	case TokenDeclined:
		ch.Status, ch.DeclineCode, status = StatusDeclined, DeclineCardDeclined, 402
	case TokenInsufficientFunds:
		ch.Status, ch.DeclineCode, status = StatusDeclined, DeclineInsufficientFunds, 402
	default:
		ch.Status, ch.DeclineCode, status = StatusDeclined, DeclineInvalidToken, 402
	}
	body, err := json.Marshal(ch)
	if err != nil {
		return Response{}, fmt.Errorf("encode charge: %w", err)
	}
	s.mu.Lock()
	e.resp, e.request = &Response{Status: status, Body: body}, request
	s.byOrder[req.OrderID] = append(s.byOrder[req.OrderID], &ch)
	s.byID[ch.ID] = &ch
	s.chargeQueue = append(s.chargeQueue, &ch)
	for len(s.chargeQueue) > s.maxCharges {
		s.forgetOldestCharge()
	}
	s.mu.Unlock()
	return *e.resp, nil
}

// forgetOldestCharge drops the oldest kept charge: its idempotency key, its
// entry by id and in its order's listing. Called with s.mu held.
func (s *Simulator) forgetOldestCharge() {
	old := s.chargeQueue[0]
	s.chargeQueue[0] = nil
	s.chargeQueue = s.chargeQueue[1:]
	delete(s.keys, old.IdempotencyKey)
	delete(s.byID, old.ID)
	list := s.byOrder[old.OrderID]
	for i, c := range list {
		if c == old {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.byOrder, old.OrderID)
	} else {
		s.byOrder[old.OrderID] = list
	}
}

// Kept returns how many charges, charge keys, refund keys and orders the
// simulator holds in memory (for tests of its bounds).
func (s *Simulator) Kept() (charges, chargeKeys, refundKeys, orders int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID), len(s.keys), len(s.refundKeys), len(s.byOrder)
}

// Charges returns every recorded charge attempt for an order, how many
// succeeded and how many of those were refunded.
func (s *Simulator) Charges(orderID string) OrderCharges {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := OrderCharges{OrderID: orderID, Charges: make([]Charge, 0, len(s.byOrder[orderID]))}
	for _, c := range s.byOrder[orderID] {
		out.Charges = append(out.Charges, *c)
		if c.Status == StatusSucceeded {
			out.Succeeded++
			if c.Refunded {
				out.Refunded++
			}
		}
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
