package channel

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	oteltrace "go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/tracing"
)

// Webhook headers. The receiver verifies the signature over the exact body
// and deduplicates on the notification id: a delivery may be repeated (see
// Webhook.Send), never altered.
const (
	HeaderSignature      = "X-Eventshop-Signature"
	HeaderNotificationID = "X-Eventshop-Notification-Id"
	HeaderTraceparent    = "traceparent"
)

// ErrInvalidOption is returned by an option given a value it cannot use.
var ErrInvalidOption = errors.New("invalid webhook option")

// Body is the JSON document POSTed to the webhook.
type Body struct {
	NotificationID string               `json:"notification_id"`
	OrderID        string               `json:"order_id"`
	Kind           notification.Kind    `json:"kind"`
	Payload        notification.Payload `json:"payload"`
	CreatedAt      time.Time            `json:"created_at"`
}

// Webhook delivers notifications as signed HTTP POSTs.
type Webhook struct {
	url        string
	secret     []byte
	client     *http.Client
	traced     *http.Client // client, with a CLIENT span per request (otelhttp)
	initial    time.Duration
	maxElapsed time.Duration
	log        *zap.Logger
}

// WebhookOption configures a Webhook.
type WebhookOption func(*Webhook) error

// WithHTTPClient sets the HTTP client (its Timeout bounds one attempt).
func WithHTTPClient(c *http.Client) WebhookOption {
	return func(w *Webhook) error {
		if c == nil {
			return fmt.Errorf("http client: %w", ErrInvalidOption)
		}
		w.client = c
		return nil
	}
}

// WithRetry sets the first retry delay and the bound on the whole retry
// sequence of one Send.
func WithRetry(initial, maxElapsed time.Duration) WebhookOption {
	return func(w *Webhook) error {
		if initial <= 0 || maxElapsed < 0 {
			return fmt.Errorf("retry %s/%s: %w", initial, maxElapsed, ErrInvalidOption)
		}
		w.initial, w.maxElapsed = initial, maxElapsed
		return nil
	}
}

// NewWebhook returns a channel posting to url, signing with secret.
func NewWebhook(url, secret string, log *zap.Logger, opts ...WebhookOption) (*Webhook, error) {
	if url == "" || secret == "" || log == nil {
		return nil, fmt.Errorf("webhook needs a url, a secret and a logger: %w", ErrInvalidOption)
	}
	w := &Webhook{
		url:        url,
		secret:     []byte(secret),
		initial:    250 * time.Millisecond,
		maxElapsed: 30 * time.Second,
		log:        log.Named("webhook"),
	}
	for _, opt := range opts {
		if err := opt(w); err != nil {
			return nil, err
		}
	}
	if w.client == nil {
		w.client = &http.Client{Timeout: 10 * time.Second}
	}
	// A redirected POST would silently become a GET: treat a redirect as
	// the receiver's answer instead of following it.
	c := *w.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	w.client = &c
	// For the requests of a recorded trace: a CLIENT span each, child of
	// the consumer's span (otelhttp uses its provider), whose context the
	// request carries as traceparent.
	traced := c
	traced.Transport = otelhttp.NewTransport(c.Transport, otelhttp.WithPropagators(tracing.Propagator))
	w.traced = &traced
	return w, nil
}

// Sign returns the signature header value of body under secret:
// "sha256=" + hex(HMAC-SHA256(secret, body)).
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Send POSTs n, retrying transport errors, 408, 429 and 5xx answers with
// exponential backoff for at most the configured max elapsed time. Any other
// non-2xx answer wraps notification.ErrRejected: the receiver will never
// accept this body. Every attempt carries the same body and notification id,
// so a receiver that processed an attempt whose answer was lost can drop the
// repeat.
func (w *Webhook) Send(ctx context.Context, n notification.Notification) error {
	body, err := json.Marshal(Body{
		NotificationID: n.ID,
		OrderID:        n.OrderID,
		Kind:           n.Kind,
		Payload:        n.Payload,
		CreatedAt:      n.CreatedAt,
	})
	if err != nil {
		return fmt.Errorf("encode webhook body: %w", err)
	}
	signature := Sign(w.secret, body)
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = w.initial
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = w.maxElapsed
	attempt := 0
	op := func() error {
		attempt++
		err := w.post(ctx, n, body, signature)
		if err != nil && !errors.Is(err, notification.ErrRejected) {
			w.log.Warn("webhook attempt failed", append(logging.Order(n.OrderID, n.TraceID),
				zap.String("notification_id", n.ID), zap.Int("attempt", attempt), zap.Error(err))...)
		}
		return err
	}
	if err := backoff.Retry(op, backoff.WithContext(b, ctx)); err != nil {
		return fmt.Errorf("webhook delivery of %s after %d attempts: %w", n.ID, attempt, err)
	}
	return nil
}

func (w *Webhook) post(ctx context.Context, n notification.Notification, body []byte, signature string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return backoff.Permanent(fmt.Errorf("build request: %w: %w", notification.ErrRejected, err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderSignature, signature)
	req.Header.Set(HeaderNotificationID, n.ID)
	client := w.client
	switch {
	case oteltrace.SpanFromContext(ctx).IsRecording():
		// Spans are recorded for this order: each attempt is a CLIENT
		// span, and the receiver's span is its child.
		client = w.traced
	case n.TraceID != "":
		// Tracing off (or this order not sampled): no span, only the
		// order's trace id, under one span id for every attempt.
		req.Header.Set(HeaderTraceparent, "00-"+n.TraceID+"-"+spanID(n.ID)+"-01")
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	// Drain a little of the body so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("receiver answered %d", code)
	default:
		return backoff.Permanent(fmt.Errorf("receiver answered %d: %w", code, notification.ErrRejected))
	}
}

// spanID derives a stable span id from the notification id, so that all
// attempts of one delivery share one span in the receiver's traces.
func spanID(notificationID string) string {
	sum := sha256.Sum256([]byte(notificationID))
	return hex.EncodeToString(sum[:8])
}
