// Package gateway is the payment service's client of the card gateway: it
// posts charges (and refunds) with idempotency keys, classifies the answers
// (charged, declined, refunded, unavailable, rejected) and guards the calls
// with the circuit breaker.
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/eventshop/payment-service/internal/breaker"
	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/tracing"
)

// Outcome labels of a charge attempt, for metrics.
const (
	OutcomeSucceeded   = "succeeded"    // charged
	OutcomeDeclined    = "declined"     // a healthy "no" from the card network
	OutcomeUnavailable = "unavailable"  // 5xx, timeout, refused connection, unreadable answer
	OutcomeRejected    = "rejected"     // another 4xx: our request is wrong
	OutcomeBreakerOpen = "breaker_open" // not attempted: the circuit is open
	// OutcomeMismatch: the gateway answered about another charge than the
	// one asked for (order, amount or currency differ): a failed payment
	// and an alert, never a success.
	OutcomeMismatch = "mismatch"
)

// DeclineGatewayMismatch is the decline code of a payment failed because
// the gateway's answer did not match the charge asked for: someone else's
// charge was made under our idempotency key, or the gateway is broken.
const DeclineGatewayMismatch = "gateway_answer_mismatch"

// ErrInvalidOption is returned for an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid option")

const (
	maxResponse    = 64 << 10
	maxDeclineCode = 128
)

// Observer is told about every charge and refund attempt (for metrics).
type Observer interface {
	// ChargeOutcome counts one charge attempt by outcome.
	ChargeOutcome(outcome string)
	// GatewayLatency records how long the gateway took to answer a charge
	// (not called when the breaker refused the attempt).
	GatewayLatency(outcome string, d time.Duration)
	// RefundOutcome counts one refund attempt by outcome (succeeded,
	// unavailable, rejected, breaker_open).
	RefundOutcome(outcome string)
}

type noObserver struct{}

func (noObserver) ChargeOutcome(string)                 {}
func (noObserver) GatewayLatency(string, time.Duration) {}
func (noObserver) RefundOutcome(string)                 {}

// Client charges cards and refunds charges through the gateway's HTTP API.
type Client struct {
	apiKey     string
	chargesURL string
	refundsURL string
	http       *http.Client
	breaker    *breaker.Breaker
	obs        Observer
	now        func() time.Time
}

// Option configures a Client.
type Option func(*Client) error

// WithTimeout bounds each gateway call (default 5s).
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("timeout %s: %w", d, ErrInvalidOption)
		}
		c.http.Timeout = d
		return nil
	}
}

// WithBreaker guards every call with b: while it is open, calls fail at
// once with an error wrapping payment.ErrGatewayUnavailable and
// breaker.ErrOpen that carries a RetryAfter hint.
func WithBreaker(b *breaker.Breaker) Option {
	return func(c *Client) error {
		if b == nil {
			return fmt.Errorf("breaker: %w", ErrInvalidOption)
		}
		c.breaker = b
		return nil
	}
}

// WithObserver reports every attempt to o.
func WithObserver(o Observer) Option {
	return func(c *Client) error {
		if o == nil {
			return fmt.Errorf("observer: %w", ErrInvalidOption)
		}
		c.obs = o
		return nil
	}
}

// New returns a client of the gateway at baseURL (for example
// http://127.0.0.1:8090) that authenticates with apiKey
// (Authorization: Bearer).
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gateway url %q: %w", baseURL, ErrInvalidOption)
	}
	if apiKey == "" {
		return nil, fmt.Errorf("gateway api key is empty: %w", ErrInvalidOption)
	}
	c := &Client{
		apiKey:     apiKey,
		chargesURL: u.JoinPath("charges").String(),
		refundsURL: u.JoinPath("refunds").String(),
		http: &http.Client{
			Timeout:   5 * time.Second,
			Transport: transport(),
			// A redirect is not part of the protocol: surface it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		obs: noObserver{},
		now: time.Now,
	}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// transport makes a client span per call when spans are exported, whose
// context the request carries as traceparent (the gateway's server span is
// its child); otherwise it only passes the caller's traceparent on.
func transport() http.RoundTripper {
	if tracing.Recording() {
		return otelhttp.NewTransport(http.DefaultTransport)
	}
	return propagating{http.DefaultTransport}
}

// propagating injects the request context's trace context into the
// request's headers.
type propagating struct{ next http.RoundTripper }

func (p propagating) RoundTrip(r *http.Request) (*http.Response, error) {
	if oteltrace.SpanContextFromContext(r.Context()).IsValid() {
		r = r.Clone(r.Context())
		tracing.Propagator.Inject(r.Context(), propagation.HeaderCarrier(r.Header))
	}
	return p.next.RoundTrip(r)
}

// chargeBody is the gateway's POST /charges request.
type chargeBody struct {
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	Token       string `json:"token"`
}

// chargeAnswer is the gateway's answer to a charge (201 or 402).
type chargeAnswer struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	DeclineCode string `json:"decline_code"`
	OrderID     string `json:"order_id"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
}

// mismatch says how the answer differs from the charge asked for, or "".
// An answer about another order, amount or currency is not our charge: a
// customer who learnt the idempotency key could have charged 1 cent under
// it, and a success must never be believed then.
func (a chargeAnswer) mismatch(req payment.ChargeRequest) string {
	switch {
	case a.OrderID != req.OrderID:
		return fmt.Sprintf("the gateway answered for order %.64q, we asked for %q", a.OrderID, req.OrderID)
	case a.AmountCents != req.AmountCents:
		return fmt.Sprintf("the gateway answered for %d cents, we asked for %d", a.AmountCents, req.AmountCents)
	case a.Currency != req.Currency:
		return fmt.Sprintf("the gateway answered in %.8q, we asked for %q", a.Currency, req.Currency)
	}
	return ""
}

// Charge asks the gateway to charge the card. A decline is a result, not an
// error. Errors wrap payment.ErrGatewayUnavailable (transient: retry later
// with the same idempotency key) or payment.ErrGatewayRejected (permanent).
func (c *Client) Charge(ctx context.Context, req payment.ChargeRequest) (payment.ChargeResult, error) {
	var ticket *breaker.Ticket
	if c.breaker != nil {
		t, err := c.breaker.Allow()
		c.breakerDecision(ctx, t, err)
		if err != nil {
			c.obs.ChargeOutcome(OutcomeBreakerOpen)
			return payment.ChargeResult{}, fmt.Errorf("%w: %w", payment.ErrGatewayUnavailable, err)
		}
		ticket = t
	}
	start := c.now()
	res, outcome, err := c.post(ctx, req)
	c.obs.GatewayLatency(outcome, c.now().Sub(start))
	c.obs.ChargeOutcome(outcome)
	if ticket != nil {
		// Only an unavailable gateway counts against it: a decline, a
		// mismatch or a rejected request is a healthy gateway answering.
		ticket.Done(outcome != OutcomeUnavailable)
	}
	return res, err
}

// breakerDecision records the breaker's answer as an event on the span in
// ctx (the consumer's): a charge that never reached the gateway shows why.
func (c *Client) breakerDecision(ctx context.Context, t *breaker.Ticket, err error) {
	span := oteltrace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.AddEvent("breaker decision", oteltrace.WithAttributes(
		attribute.Bool("breaker.allowed", err == nil),
		attribute.Bool("breaker.probe", t != nil && t.Probe()),
		attribute.String("breaker.state", c.breaker.State().String()),
	))
}

// answer is the gateway's raw answer to a POST.
type answer struct {
	code     int
	body     []byte
	replayed bool
}

// send POSTs body to url with the idempotency key and trace context. An
// error means no usable answer arrived (the outcome is unavailable) or the
// request could not be built (rejected).
func (c *Client) send(ctx context.Context, url, key, traceParent string, body any) (answer, string, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return answer{}, OutcomeRejected, fmt.Errorf("%w: encode request: %w", payment.ErrGatewayRejected, err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return answer{}, OutcomeRejected, fmt.Errorf("%w: build request: %w", payment.ErrGatewayRejected, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("Idempotency-Key", key)
	hreq.Header.Set("Authorization", "Bearer "+c.apiKey)
	if traceParent != "" {
		hreq.Header.Set(events.HeaderTraceparent, traceParent)
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return answer{}, OutcomeUnavailable, fmt.Errorf("%w: %w", payment.ErrGatewayUnavailable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return answer{}, OutcomeUnavailable, fmt.Errorf("%w: read answer: %w", payment.ErrGatewayUnavailable, err)
	}
	return answer{code: resp.StatusCode, body: b, replayed: resp.Header.Get("Idempotent-Replayed") == "true"}, "", nil
}

func (c *Client) post(ctx context.Context, req payment.ChargeRequest) (payment.ChargeResult, string, error) {
	a, outcome, err := c.send(ctx, c.chargesURL, req.IdempotencyKey, req.TraceParent,
		chargeBody{OrderID: req.OrderID, AmountCents: req.AmountCents, Currency: req.Currency, Token: req.Token})
	if err != nil {
		return payment.ChargeResult{}, outcome, err
	}
	body, replayed := a.body, a.replayed
	switch code := a.code; {
	case code == http.StatusCreated:
		var a chargeAnswer
		if err := json.Unmarshal(body, &a); err != nil || a.ID == "" || a.Status != "succeeded" {
			// The card may have been charged: never record a failure; a
			// retry with the same key gets the answer again.
			return payment.ChargeResult{}, OutcomeUnavailable, fmt.Errorf("%w: unreadable 201 answer %.200q", payment.ErrGatewayUnavailable, body)
		}
		if why := a.mismatch(req); why != "" {
			return mismatched(a, why, replayed), OutcomeMismatch, nil
		}
		return payment.ChargeResult{ChargeID: a.ID, Succeeded: true, Replayed: replayed}, OutcomeSucceeded, nil
	case code == http.StatusPaymentRequired:
		var a chargeAnswer
		if err := json.Unmarshal(body, &a); err != nil {
			return payment.ChargeResult{}, OutcomeUnavailable, fmt.Errorf("%w: unreadable 402 answer %.200q", payment.ErrGatewayUnavailable, body)
		}
		if why := a.mismatch(req); why != "" {
			return mismatched(a, why, replayed), OutcomeMismatch, nil
		}
		if a.DeclineCode == "" {
			a.DeclineCode = events.ReasonCardDeclined
		}
		if len(a.DeclineCode) > maxDeclineCode {
			a.DeclineCode = a.DeclineCode[:maxDeclineCode] // the event schema's bound
		}
		return payment.ChargeResult{ChargeID: a.ID, DeclineCode: a.DeclineCode, Replayed: replayed}, OutcomeDeclined, nil
	case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return payment.ChargeResult{}, OutcomeUnavailable, fmt.Errorf("%w: answered %d %.200s", payment.ErrGatewayUnavailable, code, body)
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		return payment.ChargeResult{}, OutcomeUnavailable, refusedCredential(code, body)
	case code >= 400:
		return payment.ChargeResult{}, OutcomeRejected, fmt.Errorf("%w: answered %d %.200s", payment.ErrGatewayRejected, code, body)
	default:
		return payment.ChargeResult{}, OutcomeUnavailable, fmt.Errorf("%w: unexpected answer %d", payment.ErrGatewayUnavailable, code)
	}
}

// mismatched is the failed result of an answer about another charge.
func mismatched(a chargeAnswer, why string, replayed bool) payment.ChargeResult {
	return payment.ChargeResult{ChargeID: a.ID, DeclineCode: DeclineGatewayMismatch, Mismatch: why, Replayed: replayed}
}

// refusedCredential is the error of a 401 or 403: our API key is wrong or
// missing, an operator's mistake that no request of ours can fix, and that
// must not fail or dead-letter payments: the work waits (and the breaker
// opens) until the key is fixed.
func refusedCredential(code int, body []byte) error {
	return fmt.Errorf("%w: the gateway refused our credential (%d %.200s): check GATEWAY_API_KEY", payment.ErrGatewayUnavailable, code, body)
}

// refundBody is the gateway's POST /refunds request.
type refundBody struct {
	ChargeID    string `json:"charge_id"`
	AmountCents int64  `json:"amount_cents"`
}

// refundAnswer is the gateway's answer to a refund (201).
type refundAnswer struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// Refund asks the gateway to give a charge's money back. The idempotency key
// makes a repeat (after a crash or a timeout) a replay of the first refund:
// a charge is never refunded twice. Errors wrap
// payment.ErrGatewayUnavailable (transient: retry later with the same key)
// or payment.ErrGatewayRejected (permanent: an unknown or unrefundable
// charge, a malformed request).
func (c *Client) Refund(ctx context.Context, req payment.RefundRequest) (payment.RefundResult, error) {
	var ticket *breaker.Ticket
	if c.breaker != nil {
		t, err := c.breaker.Allow()
		c.breakerDecision(ctx, t, err)
		if err != nil {
			c.obs.RefundOutcome(OutcomeBreakerOpen)
			return payment.RefundResult{}, fmt.Errorf("%w: %w", payment.ErrGatewayUnavailable, err)
		}
		ticket = t
	}
	res, outcome, err := c.postRefund(ctx, req)
	c.obs.RefundOutcome(outcome)
	if ticket != nil {
		ticket.Done(outcome != OutcomeUnavailable)
	}
	return res, err
}

func (c *Client) postRefund(ctx context.Context, req payment.RefundRequest) (payment.RefundResult, string, error) {
	a, outcome, err := c.send(ctx, c.refundsURL, req.IdempotencyKey, req.TraceParent,
		refundBody{ChargeID: req.ChargeID, AmountCents: req.AmountCents})
	if err != nil {
		return payment.RefundResult{}, outcome, err
	}
	switch code := a.code; {
	case code == http.StatusCreated:
		var r refundAnswer
		if err := json.Unmarshal(a.body, &r); err != nil || r.ID == "" || r.Status != "succeeded" {
			// The money may have gone back: a retry with the same key
			// gets the answer again.
			return payment.RefundResult{}, OutcomeUnavailable, fmt.Errorf("%w: unreadable 201 answer %.200q", payment.ErrGatewayUnavailable, a.body)
		}
		return payment.RefundResult{RefundID: r.ID, Replayed: a.replayed}, OutcomeSucceeded, nil
	case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooManyRequests:
		return payment.RefundResult{}, OutcomeUnavailable, fmt.Errorf("%w: refund answered %d %.200s", payment.ErrGatewayUnavailable, code, a.body)
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		return payment.RefundResult{}, OutcomeUnavailable, refusedCredential(code, a.body)
	case code >= 400:
		return payment.RefundResult{}, OutcomeRejected, fmt.Errorf("%w: refund answered %d %.200s", payment.ErrGatewayRejected, code, a.body)
	default:
		return payment.RefundResult{}, OutcomeUnavailable, fmt.Errorf("%w: unexpected refund answer %d", payment.ErrGatewayUnavailable, code)
	}
}
