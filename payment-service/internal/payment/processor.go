package payment

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/logging"
	"github.com/eventshop/shared/platform/trace"
)

// NoChargeID is the charge id of an order whose total is zero: there is
// nothing to charge (the gateway refuses zero amounts), so it is paid without
// a call.
const NoChargeID = "no_charge"

// Store keeps payment records, one per order, changed only by
// compare-and-set.
type Store interface {
	// Load returns the order's record and its revision, or an error
	// wrapping ErrNotFound.
	Load(ctx context.Context, orderID string) (Record, uint64, error)
	// Create stores rec if the order has no record yet; otherwise the
	// error wraps ErrConflict.
	Create(ctx context.Context, rec Record) (uint64, error)
	// Update replaces the record stored at revision rev; if it changed
	// since, the error wraps ErrConflict.
	Update(ctx context.Context, rec Record, rev uint64) (uint64, error)
}

// TokenSource finds the payment token the customer gave with the order.
type TokenSource interface {
	// Token returns the order's payment token, or an error wrapping
	// ErrNoPaymentToken when it cannot exist.
	Token(ctx context.Context, orderID string) (string, error)
}

// Gateway charges cards and refunds charges.
type Gateway interface {
	Charge(ctx context.Context, req ChargeRequest) (ChargeResult, error)
	Refund(ctx context.Context, req RefundRequest) (RefundResult, error)
}

// Publisher publishes events create-once (events.Publisher).
type Publisher interface {
	Publish(ctx context.Context, t events.Type, orderID, traceparent string, data any) (events.Published, error)
}

// Request asks for an order to be paid: the reserved total.
type Request struct {
	OrderID     string
	AmountCents int64
	Currency    string
	// TraceParent is the traceparent of the event that asked for payment.
	TraceParent string
}

// Cancellation says an order was cancelled: whatever it was charged must go
// back, and nothing may be charged later.
type Cancellation struct {
	OrderID string
	// Reason is the order's cancellation reason (timeout, ...).
	Reason string
	// TraceParent is the traceparent of the cancelled event.
	TraceParent string
}

// maxCASAttempts bounds the read-decide-write loop on conflicting writes;
// past it the message is retried later rather than spinning.
const maxCASAttempts = 16

// Processor pays reserved orders and makes sure cancelled ones end up
// charged nothing. Every step is safe to repeat, so redelivered or
// concurrent requests end in the same single charge, refund, record and
// events:
//   - a charging record is written before the gateway is first asked, so
//     a cancellation that comes while a charge may exist settles that charge
//     (asking again with the same key) and refunds it, instead of voiding;
//   - the charge uses a random idempotency key drawn with the charging
//     record and stored in it, and the refund the record's RefundKey:
//     repeats after a crash or a timeout are gateway replays, and no
//     customer can know the keys (one who could would charge 1 cent under
//     it first, and be believed);
//   - records change by compare-and-set; the loser of a race reads the
//     winner's record and decides afresh;
//   - a recorded outcome is only re-announced (the publish is create-once).
//
// State is written before the event, so the two cannot part: a crash after
// the write is healed by the redelivery re-announcing the record.
type Processor struct {
	store   Store
	tokens  TokenSource
	gateway Gateway
	pub     Publisher
	log     *zap.Logger
	now     func() time.Time
	newKey  func() string
}

// ProcessorOption configures a Processor.
type ProcessorOption func(*Processor) error

// ErrInvalidOption is returned for an option or dependency that cannot work.
var ErrInvalidOption = errors.New("invalid option")

// WithClock sets the clock used for record timestamps.
func WithClock(now func() time.Time) ProcessorOption {
	return func(p *Processor) error {
		if now == nil {
			return fmt.Errorf("clock: %w", ErrInvalidOption)
		}
		p.now = now
		return nil
	}
}

// WithKeySource sets the source of charge idempotency keys (default: 128
// random bits). Keys must be unguessable: tests only.
func WithKeySource(newKey func() string) ProcessorOption {
	return func(p *Processor) error {
		if newKey == nil {
			return fmt.Errorf("key source: %w", ErrInvalidOption)
		}
		p.newKey = newKey
		return nil
	}
}

// randomKey returns a fresh charge idempotency key: 128 random bits.
func randomKey() string { return "pay_" + rand.Text() }

// NewProcessor returns a processor over its dependencies.
func NewProcessor(store Store, tokens TokenSource, gateway Gateway, pub Publisher, log *zap.Logger, opts ...ProcessorOption) (*Processor, error) {
	if store == nil || tokens == nil || gateway == nil || pub == nil || log == nil {
		return nil, fmt.Errorf("processor needs a store, token source, gateway, publisher and logger: %w", ErrInvalidOption)
	}
	p := &Processor{store: store, tokens: tokens, gateway: gateway, pub: pub, log: log, now: time.Now, newKey: randomKey}
	for _, opt := range opts {
		if err := opt(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Process pays the order once and announces the outcome; an order cancelled
// before it was charged (a void record) is not charged. Errors wrap
// ErrNoPaymentToken or ErrGatewayRejected (permanent), ErrGatewayUnavailable
// (wait and retry; it may carry a RetryAfter hint), or are transient
// infrastructure failures.
func (p *Processor) Process(ctx context.Context, req Request) (Record, error) {
	if !events.ValidID(req.OrderID) {
		return Record{}, fmt.Errorf("order %q: %w", req.OrderID, ErrInvalidOrderID)
	}
	fields := logging.Order(req.OrderID, trace.TraceID(req.TraceParent))
	// A reservation is usually paid once: try to begin at once, without
	// reading the record; whatever stops that (a record exists, the token
	// is not readable) is decided on the record, read below.
	rec, rev, token, err := p.begin(ctx, req)
	first := err == nil
	for range maxCASAttempts {
		if !first {
			rec, rev, err = p.store.Load(ctx, req.OrderID)
			if errors.Is(err, ErrNotFound) {
				rec, rev, token, err = p.begin(ctx, req)
				if errors.Is(err, ErrConflict) {
					continue // a cancellation or another delivery wrote first
				}
			}
		}
		first = false
		if err != nil {
			return Record{}, fmt.Errorf("payment of order %s: %w", req.OrderID, err)
		}
		switch rec.Status {
		case StatusCharging:
			if token == "" {
				if token, err = p.tokens.Token(ctx, req.OrderID); err != nil {
					return Record{}, fmt.Errorf("payment token of order %s: %w", req.OrderID, err)
				}
			}
			next, res, err := p.charge(ctx, rec, token, req.TraceParent)
			if err != nil {
				return Record{}, err
			}
			p.alertMismatch(res, fields)
			if _, err := p.store.Update(ctx, next, rev); err != nil {
				if errors.Is(err, ErrConflict) {
					continue // cancelled meanwhile (and settled), or another delivery recorded it
				}
				return Record{}, fmt.Errorf("record payment of order %s: %w", req.OrderID, err)
			}
			p.log.Info("payment "+string(next.Status), append(fields,
				zap.String("charge_id", next.ChargeID), zap.String("decline_code", next.DeclineCode),
				zap.Int64("amount_cents", next.AmountCents), zap.String("currency", next.Currency),
				zap.Bool("gateway_replayed", res.Replayed))...)
			return next, p.announce(ctx, next, req.TraceParent)
		case StatusVoid:
			p.log.Info("order was cancelled before it was charged: not charging",
				append(fields, zap.String("cancel_reason", rec.CancelReason))...)
			return rec, nil
		default:
			p.log.Debug("payment already recorded, re-announcing", append(fields, zap.String("status", string(rec.Status)))...)
			return rec, p.announce(ctx, rec, req.TraceParent)
		}
	}
	return Record{}, fmt.Errorf("payment of order %s: %d conflicting writes in a row: %w", req.OrderID, maxCASAttempts, ErrConflict)
}

// alertMismatch logs a gateway answer about another charge than ours (the
// metric is counted by the gateway client's observer).
func (p *Processor) alertMismatch(res ChargeResult, fields []zap.Field) {
	if res.Mismatch == "" {
		return
	}
	p.log.Error("gateway answer does not match the charge asked for: payment failed, not believed",
		append(fields, zap.String("mismatch", res.Mismatch), zap.String("gateway_charge_id", res.ChargeID))...)
}

// begin creates the order's first record: a succeeded one at once for a
// zero total (nothing to charge), otherwise the charging intent with a new
// random idempotency key, which every later attempt reads back from the
// record. The token is read first, so that an order that cannot be charged
// leaves no intent behind. An existing record is ErrConflict.
func (p *Processor) begin(ctx context.Context, req Request) (Record, uint64, string, error) {
	charge := ChargeRequest{OrderID: req.OrderID, AmountCents: req.AmountCents, Currency: req.Currency}
	now := p.now()
	var (
		rec   Record
		token string
	)
	if req.AmountCents == 0 {
		rec = NewRecord(charge, ChargeResult{ChargeID: NoChargeID, Succeeded: true}, now)
	} else {
		var err error
		if token, err = p.tokens.Token(ctx, req.OrderID); err != nil {
			return Record{}, 0, "", fmt.Errorf("payment token: %w", err)
		}
		charge.IdempotencyKey = p.newKey()
		rec = NewIntent(charge, now)
	}
	rev, err := p.store.Create(ctx, rec)
	if err != nil {
		return Record{}, 0, "", err
	}
	return rec, rev, token, nil
}

// charge asks the gateway to charge a charging record, with the record's
// key (a repeat replays the first answer), and returns the record of the
// answer.
func (p *Processor) charge(ctx context.Context, rec Record, token, traceParent string) (Record, ChargeResult, error) {
	res, err := p.gateway.Charge(ctx, ChargeRequest{
		OrderID:        rec.OrderID,
		AmountCents:    rec.AmountCents,
		Currency:       rec.Currency,
		Token:          token,
		IdempotencyKey: rec.GatewayKey(),
		TraceParent:    traceParent,
	})
	if err != nil {
		return Record{}, ChargeResult{}, fmt.Errorf("charge order %s: %w", rec.OrderID, err)
	}
	return rec.Charged(res, p.now()), res, nil
}

// Cancel makes sure a cancelled order is charged nothing, and announces a
// refund. With no record yet, a void record stops any later charge. A
// succeeded charge is refunded. A charging record means a charge may exist
// (an attempt in flight, or one that timed out after the gateway took it):
// the gateway is asked again with the same key, which replays that charge
// or makes it, and a success is refunded at once. Errors are classified as
// for Process.
func (p *Processor) Cancel(ctx context.Context, c Cancellation) (Record, error) {
	if !events.ValidID(c.OrderID) {
		return Record{}, fmt.Errorf("order %q: %w", c.OrderID, ErrInvalidOrderID)
	}
	fields := append(logging.Order(c.OrderID, trace.TraceID(c.TraceParent)), zap.String("cancel_reason", c.Reason))
	for range maxCASAttempts {
		rec, rev, err := p.store.Load(ctx, c.OrderID)
		if errors.Is(err, ErrNotFound) {
			void := NewVoid(c.OrderID, c.Reason, p.now())
			if _, err := p.store.Create(ctx, void); err != nil {
				if errors.Is(err, ErrConflict) {
					continue // the charge path wrote its intent first
				}
				return Record{}, fmt.Errorf("void payment of order %s: %w", c.OrderID, err)
			}
			p.log.Info("order cancelled before any charge: payment voided", fields...)
			return void, nil
		}
		if err != nil {
			return Record{}, fmt.Errorf("payment of order %s: %w", c.OrderID, err)
		}
		next := rec
		switch rec.Status {
		case StatusVoid, StatusFailed:
			return rec, nil // nothing was charged
		case StatusRefunded:
			return rec, p.announce(ctx, rec, c.TraceParent)
		case StatusCharging:
			token, err := p.tokens.Token(ctx, c.OrderID)
			if err != nil {
				return Record{}, fmt.Errorf("payment token of order %s: %w", c.OrderID, err)
			}
			var res ChargeResult
			if next, res, err = p.charge(ctx, rec, token, c.TraceParent); err != nil {
				return Record{}, err
			}
			p.alertMismatch(res, fields)
		}
		if next.Status == StatusSucceeded {
			if next, err = p.refund(ctx, next, c); err != nil {
				return Record{}, err
			}
		}
		if _, err := p.store.Update(ctx, next, rev); err != nil {
			if errors.Is(err, ErrConflict) {
				continue // the charge path recorded meanwhile; a repeated refund is a replay
			}
			return Record{}, fmt.Errorf("record refund of order %s: %w", c.OrderID, err)
		}
		p.log.Info("payment of a cancelled order "+string(next.Status), append(fields,
			zap.String("charge_id", next.ChargeID), zap.String("refund_id", next.RefundID),
			zap.Int64("amount_cents", next.AmountCents), zap.String("currency", next.Currency))...)
		return next, p.announce(ctx, next, c.TraceParent)
	}
	return Record{}, fmt.Errorf("payment of order %s: %d conflicting writes in a row: %w", c.OrderID, maxCASAttempts, ErrConflict)
}

// refund gives a succeeded record's charge back through the gateway (a
// charge that moved no money needs no call) and returns the refunded record.
func (p *Processor) refund(ctx context.Context, rec Record, c Cancellation) (Record, error) {
	if rec.ChargeID == NoChargeID || rec.AmountCents == 0 {
		return rec.Refunded(NoRefundID, c.Reason, p.now()), nil
	}
	res, err := p.gateway.Refund(ctx, RefundRequest{
		OrderID:        rec.OrderID,
		ChargeID:       rec.ChargeID,
		AmountCents:    rec.AmountCents,
		IdempotencyKey: rec.RefundKey(),
		TraceParent:    c.TraceParent,
	})
	if err != nil {
		return Record{}, fmt.Errorf("refund charge %s of order %s: %w", rec.ChargeID, rec.OrderID, err)
	}
	if res.Replayed {
		p.log.Info("refund replayed by the gateway", append(logging.Order(rec.OrderID, trace.TraceID(c.TraceParent)),
			zap.String("refund_id", res.RefundID))...)
	}
	return rec.Refunded(res.RefundID, c.Reason, p.now()), nil
}

// announce publishes the record's event, create-once: a second announce is
// a harmless duplicate. Charging and void records announce nothing.
func (p *Processor) announce(ctx context.Context, rec Record, parent string) error {
	typ, data, ok := rec.Event()
	if !ok {
		return nil
	}
	if _, err := p.pub.Publish(ctx, typ, rec.OrderID, trace.Child(parent).String(), data); err != nil {
		return fmt.Errorf("announce payment of order %s: %w", rec.OrderID, err)
	}
	return nil
}
