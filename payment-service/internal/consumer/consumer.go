// Package consumer is the payment service's JetStream adapter: the runner
// configuration of its two durable consumers, and per consumer a handler
// that decodes the event once, hands it to the use cases (internal/app),
// and turns their errors into the runner's verdicts (ack, dead-letter,
// retry, wait) in one place, verdict.
package consumer

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/payment-service/internal/app"
	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kit"
	"github.com/eventshop/shared/platform/runner"
)

// Durable names of the service's consumers.
const (
	// ReservedDurable consumes reserved orders (inventory.*.reserved).
	ReservedDurable = "payment-inventory"
	// OrdersDurable consumes cancelled orders (orders.*.cancelled).
	OrdersDurable = "payment-orders"
)

// retry is the redelivery schedule of the consumers' transient failures
// other than the gateway's (NATS writes): NakWithDelay after 0.25-0.5s,
// doubling up to 15-30s, with full jitter. Gateway outages wait on the
// schedule given to Consumers instead.
var retry = runner.Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2}

// Consumers returns the service's consumers over the use cases a:
//   - reserved orders (inventory.<id>.reserved): the order's stock is held
//     and priced, so it is time to charge;
//   - cancelled orders (orders.<id>.cancelled): refund what was charged,
//     void what was not yet.
//
// MaxDeliver is unlimited for both: a gateway outage only ever makes the
// message wait, and a refund that waits for the gateway must never be
// given up on, so neither may exhaust its deliveries into the dead-letter
// stream; poison messages are still dead-lettered at once as permanent.
// gatewayWait is the redelivery schedule while the gateway fails and the
// breaker has not opened yet (an open breaker says itself when to come
// back); its Max should be the breaker's open timeout.
func Consumers(a *app.App, concurrency int, gatewayWait runner.Backoff) ([]kit.Consumer, error) {
	if a == nil {
		return nil, errors.New("payment consumers need the app")
	}
	if gatewayWait.Initial <= 0 || gatewayWait.Max < gatewayWait.Initial || gatewayWait.Multiplier < 1 {
		return nil, fmt.Errorf("wait schedule %+v: %w", gatewayWait, runner.ErrInvalidConfig)
	}
	h := handlers{wait: gatewayWait}
	return []kit.Consumer{
		{Config: config(events.StreamInventory, ReservedDurable, events.InventoryReserved, concurrency),
			Handle: events.Consume(h.verdict, events.On(events.InventoryReserved, a.InventoryReserved))},
		{Config: config(events.StreamOrders, OrdersDurable, events.OrderCancelled, concurrency),
			Handle: events.Consume(h.verdict, events.On(events.OrderCancelled, a.OrderCancelled))},
	}, nil
}

// config is the runner configuration of a consumer of one event type.
func config(stream, durable string, t events.Type, concurrency int) runner.Config {
	return runner.Config{
		Stream:         stream,
		Durable:        durable,
		FilterSubjects: []string{events.FilterSubject(t)},
		Concurrency:    concurrency,
		MaxDeliver:     -1,
		Retry:          retry,
	}
}

// handlers hold what the verdict needs: wait is the redelivery schedule
// while the gateway is unavailable.
type handlers struct {
	wait runner.Backoff
}

// tokenAttempts bounds the deliveries of a reserved event whose order's
// created event cannot be found, tokenRetry spaces them (about 2 s in all).
const (
	tokenAttempts = 8
	tokenRetry    = 250 * time.Millisecond
)

// retryHinter is an error that knows when trying again is worth it (an open
// circuit breaker).
type retryHinter interface{ RetryAfter() time.Duration }

// verdict maps the use cases' errors onto the runner's handling.
func (h handlers) verdict(msg jetstream.Msg, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, app.ErrIllegalTransition):
		return runner.Refused(events.ReasonIllegalTransition, err)
	case errors.Is(err, payment.ErrNoPaymentToken),
		errors.Is(err, payment.ErrGatewayRejected),
		errors.Is(err, payment.ErrInvalidOrderID),
		errors.Is(err, payment.ErrInvalidRecord):
		return runner.Permanent(err)
	case errors.Is(err, payment.ErrTokenNotVisible):
		// A replica catches up within milliseconds; an order that never
		// existed is poison after a few tries (MaxDeliver is unlimited).
		if meta, merr := msg.Metadata(); merr == nil && meta.NumDelivered >= tokenAttempts {
			return runner.Permanent(fmt.Errorf("%w after %d deliveries: %w", payment.ErrNoPaymentToken, meta.NumDelivered, err))
		}
		return runner.RetryAfter(err, tokenRetry)
	case errors.Is(err, payment.ErrGatewayUnavailable):
		// Never a failed payment: the order waits in JetStream until the
		// gateway is back, without spending delivery attempts.
		var hint retryHinter
		if errors.As(err, &hint) && hint.RetryAfter() > 0 {
			return runner.Wait(err, hint.RetryAfter())
		}
		var delivered uint64 = 1
		if meta, merr := msg.Metadata(); merr == nil {
			delivered = meta.NumDelivered
		}
		return runner.Wait(err, runner.Delay(h.wait, delivered))
	default:
		return err // NATS trouble and the like: retry with the runner's backoff
	}
}
