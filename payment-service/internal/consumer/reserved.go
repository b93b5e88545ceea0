// Package consumer holds the payment service's JetStream handlers: they
// parse and validate the event, hand it to the payment domain, and turn the
// domain's errors into the runner's verdicts (ack, dead-letter, retry,
// wait).
package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/runner"
)

// ReservedDurable is the durable name of the consumer of reserved orders.
const ReservedDurable = "payment-inventory"

// Payer pays a reserved order (payment.Processor).
type Payer interface {
	Process(ctx context.Context, req payment.Request) (payment.Record, error)
}

// Reserved handles inventory.<id>.reserved: the order's stock is held and
// priced, so it is time to charge.
type Reserved struct {
	payer Payer
	wait  runner.Backoff
}

// retry is the redelivery schedule of the reserved-order consumer's
// transient failures other than the gateway's (NATS writes): NakWithDelay
// after 0.25-0.5s, doubling up to 15-30s, with full jitter. Gateway
// outages wait on the schedule given to NewReserved instead.
var retry = runner.Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2}

// ReservedConfig returns the runner configuration of the reserved-order
// consumer. MaxDeliver is unlimited: a gateway outage only ever makes the
// message wait, and must never exhaust its deliveries into the dead-letter
// stream; poison messages are still dead-lettered at once as permanent.
func ReservedConfig(concurrency int) runner.Config {
	return runner.Config{
		Stream:         events.StreamInventory,
		Durable:        ReservedDurable,
		FilterSubjects: []string{events.FilterSubject(events.InventoryReserved)},
		Concurrency:    concurrency,
		MaxDeliver:     -1,
		Retry:          retry,
	}
}

// NewReserved returns the handler. wait is the redelivery schedule while the
// gateway fails and the breaker has not opened yet (an open breaker says
// itself when to come back); its Max should be the breaker's open timeout.
func NewReserved(p Payer, wait runner.Backoff) (*Reserved, error) {
	if p == nil {
		return nil, errors.New("reserved handler needs a payer")
	}
	if wait.Initial <= 0 || wait.Max < wait.Initial || wait.Multiplier < 1 {
		return nil, fmt.Errorf("wait schedule %+v: %w", wait, runner.ErrInvalidConfig)
	}
	return &Reserved{payer: p, wait: wait}, nil
}

// Handle is the runner.Handler.
func (h *Reserved) Handle(ctx context.Context, msg jetstream.Msg) error {
	env, err := events.Decode(msg.Subject(), msg.Data())
	if err != nil {
		return runner.Refused("invalid_event", fmt.Errorf("%s: %w", msg.Subject(), err))
	}
	if env.Type != events.InventoryReserved {
		return runner.Refused("invalid_event", fmt.Errorf("%s: %w: a %s event", msg.Subject(), events.ErrInvalidEvent, env.Type))
	}
	var data events.InventoryReservedData
	if err := env.DecodeData(&data); err != nil {
		return runner.Refused("invalid_event", fmt.Errorf("%s: %w", msg.Subject(), err))
	}
	_, err = h.payer.Process(ctx, payment.Request{
		OrderID:     data.OrderID,
		AmountCents: data.TotalCents,
		Currency:    data.Currency,
		TraceParent: env.TraceParent,
	})
	return verdict(msg, err, h.wait)
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

// verdict maps the domain's errors onto the runner's handling; wait is the
// redelivery schedule while the gateway is unavailable.
func verdict(msg jetstream.Msg, err error, wait runner.Backoff) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, payment.ErrNoPaymentToken),
		errors.Is(err, payment.ErrGatewayRejected),
		errors.Is(err, payment.ErrInvalidOrderID),
		errors.Is(err, payment.ErrInvalidRecord):
		return runner.Permanent(err)
	case errors.Is(err, events.ErrConflictingDuplicate):
		// Another event already holds the outcome's subject (forged, or a
		// bug): the payment cannot be announced; an operator decides.
		return runner.Refused("conflicting_duplicate", err)
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
		return runner.Wait(err, runner.Delay(wait, delivered))
	default:
		return err // NATS trouble and the like: retry with the runner's backoff
	}
}
