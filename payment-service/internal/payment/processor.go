package payment

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kvstore"
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

// Outcomes reads the order's payment events, the record of its outcome
// (store.PaymentEvents).
type Outcomes interface {
	// Last returns the order's last event in the PAYMENTS stream and its
	// stream sequence, or an error wrapping ErrNotFound.
	Last(ctx context.Context, orderID string) (events.Envelope, uint64, error)
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

// Publisher publishes events (events.Publisher): create-once, or only
// after the order's last event in the stream.
type Publisher interface {
	Publish(ctx context.Context, t events.Type, orderID, traceparent string, data any) (events.Published, error)
	PublishAfter(ctx context.Context, t events.Type, orderID, traceparent string, data any, after uint64) (events.Published, error)
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

// casRetry bounds and paces the read-decide-write loops on conflicting
// writes (16 attempts); past it the message is retried later rather than
// spinning.
var casRetry = kvstore.Policy{Attempts: 16, Conflict: ErrConflict}

// Processor pays reserved orders and makes sure cancelled ones end up
// charged nothing. Every step is safe to repeat, so redelivered or
// concurrent requests end in the same single charge, refund and events
// (docs/architecture.md, Payment):
//   - a charging record is written before the gateway is first asked, so
//     a cancellation that comes while a charge may exist settles that charge
//     (asking again with the same key) and refunds it, instead of voiding;
//   - the charge uses a random idempotency key drawn with the charging
//     record and stored in it, and the refund the record's RefundKey:
//     repeats after a crash or a timeout are gateway replays, and no
//     customer can know the keys (one who could would charge 1 cent under
//     it first, and be believed);
//   - the outcome is not written to the record: the order's payment event
//     is the record of it. succeeded or failed is published only as the
//     order's first payment event, refunded only right after the event it
//     follows (events.Publisher.PublishAfter), so of two deciders the first
//     wins and the other reads what won;
//   - a stored outcome is only read back, never decided again.
//
// Records an earlier version wrote with an outcome in them (succeeded,
// failed, refunded) are still followed as it did: re-announced create-once,
// refunded by compare-and-set.
type Processor struct {
	store    Store
	outcomes Outcomes
	tokens   TokenSource
	gateway  Gateway
	pub      Publisher
	log      *zap.Logger
	now      func() time.Time
	newKey   func() string
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
func NewProcessor(store Store, outcomes Outcomes, tokens TokenSource, gateway Gateway, pub Publisher, log *zap.Logger, opts ...ProcessorOption) (*Processor, error) {
	if store == nil || outcomes == nil || tokens == nil || gateway == nil || pub == nil || log == nil {
		return nil, fmt.Errorf("processor needs a store, outcomes, token source, gateway, publisher and logger: %w", ErrInvalidOption)
	}
	p := &Processor{store: store, outcomes: outcomes, tokens: tokens, gateway: gateway, pub: pub, log: log, now: time.Now, newKey: randomKey}
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
// (wait and retry; it may carry a RetryAfter hint),
// events.ErrConflictingDuplicate (a payment event the saga did not write),
// or are transient infrastructure failures.
func (p *Processor) Process(ctx context.Context, req Request) (Record, error) {
	if !events.ValidID(req.OrderID) {
		return Record{}, fmt.Errorf("order %q: %w", req.OrderID, ErrInvalidOrderID)
	}
	fields := logging.Order(req.OrderID, trace.TraceID(req.TraceParent))
	rec, token, fresh, err := p.intent(ctx, req)
	if err != nil {
		return Record{}, fmt.Errorf("payment of order %s: %w", req.OrderID, err)
	}
	switch rec.Status {
	case StatusCharging:
		return p.pay(ctx, req, rec, token, fresh, fields)
	case StatusVoid:
		p.log.Info("order was cancelled before it was charged: not charging",
			append(fields, zap.String("cancel_reason", rec.CancelReason))...)
		return rec, nil
	default:
		p.log.Debug("payment already recorded, re-announcing", append(fields, zap.String("status", string(rec.Status)))...)
		return rec, p.announce(ctx, rec, req.TraceParent)
	}
}

// intent returns the order's record: the charging intent just created
// (fresh), or the record already there. A reservation is usually paid once:
// it tries to create at once, without reading; whatever stops that (a
// record exists, the token is not readable) is decided on the record.
func (p *Processor) intent(ctx context.Context, req Request) (rec Record, token string, fresh bool, err error) {
	if rec, token, err = p.begin(ctx, req); err == nil {
		return rec, token, true, nil
	}
	err = kvstore.Retry(ctx, casRetry, func(ctx context.Context) error {
		var err error
		if rec, _, err = p.store.Load(ctx, req.OrderID); !errors.Is(err, ErrNotFound) {
			token, fresh = "", false
			return err
		}
		rec, token, err = p.begin(ctx, req) // a conflict: a cancellation or another delivery wrote first
		fresh = err == nil
		return err
	})
	if err != nil {
		return Record{}, "", false, err
	}
	return rec, token, fresh, nil
}

// begin creates the order's charging record with a new random idempotency
// key, which every later attempt reads back from the record. The token is
// read first (a zero total needs none), so that an order that cannot be
// charged leaves no intent behind. An existing record is ErrConflict.
func (p *Processor) begin(ctx context.Context, req Request) (Record, string, error) {
	var token string
	if req.AmountCents > 0 {
		var err error
		if token, err = p.tokens.Token(ctx, req.OrderID); err != nil {
			return Record{}, "", fmt.Errorf("payment token: %w", err)
		}
	}
	rec := NewIntent(ChargeRequest{OrderID: req.OrderID, AmountCents: req.AmountCents, Currency: req.Currency,
		IdempotencyKey: p.newKey()}, p.now())
	if _, err := p.store.Create(ctx, rec); err != nil {
		return Record{}, "", err
	}
	return rec, token, nil
}

// pay settles a charging record. A payment event already stored is the
// outcome; otherwise the gateway is asked (a replay if it was asked before)
// and its answer published as the order's first payment event. fresh: the
// record was just created, so no event can be stored yet (one that is makes
// the publish overtaken, and is checked then).
func (p *Processor) pay(ctx context.Context, req Request, rec Record, token string, fresh bool, fields []zap.Field) (Record, error) {
	if !fresh {
		out, _, err := p.outcome(ctx, rec)
		if err == nil {
			p.log.Debug("payment already announced", append(fields, zap.String("status", string(out.Status)))...)
			return out, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Record{}, err
		}
	}
	next, err := p.charge(ctx, rec, token, req.TraceParent, fields)
	if err != nil {
		return Record{}, err
	}
	over, err := p.announceAfter(ctx, rec, next, req.TraceParent, 0)
	if err != nil {
		return Record{}, err
	}
	if over != nil {
		// Only the order's cancellation settles its charge before the
		// charge path: it publishes the refund of this very charge first.
		if next.Status != StatusSucceeded || over.rec.Status != StatusRefunded || over.rec.ChargeID != next.ChargeID {
			return Record{}, overtaken(next, over, 0)
		}
		p.log.Info("payment settled and refunded by the order's cancellation first: not announcing it",
			append(fields, zap.String("charge_id", next.ChargeID), zap.String("refund_id", over.rec.RefundID))...)
		return over.rec, nil
	}
	p.log.Info("payment "+string(next.Status), append(fields,
		zap.String("charge_id", next.ChargeID), zap.String("decline_code", next.DeclineCode),
		zap.Int64("amount_cents", next.AmountCents), zap.String("currency", next.Currency))...)
	return next, nil
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

// charge asks the gateway to charge a charging record, with the record's
// key (a repeat replays the first answer), and returns the record of the
// answer. A zero total is paid without a call (the gateway refuses zero
// amounts); the token is read if not given.
func (p *Processor) charge(ctx context.Context, rec Record, token, traceParent string, fields []zap.Field) (Record, error) {
	if rec.AmountCents == 0 {
		return rec.Charged(ChargeResult{ChargeID: NoChargeID, Succeeded: true}, p.now()), nil
	}
	if token == "" {
		var err error
		if token, err = p.tokens.Token(ctx, rec.OrderID); err != nil {
			return Record{}, fmt.Errorf("payment token of order %s: %w", rec.OrderID, err)
		}
	}
	res, err := p.gateway.Charge(ctx, ChargeRequest{
		OrderID:        rec.OrderID,
		AmountCents:    rec.AmountCents,
		Currency:       rec.Currency,
		Token:          token,
		IdempotencyKey: rec.GatewayKey(),
		TraceParent:    traceParent,
	})
	if err != nil {
		return Record{}, fmt.Errorf("charge order %s: %w", rec.OrderID, err)
	}
	p.alertMismatch(res, fields)
	if res.Replayed {
		p.log.Info("charge replayed by the gateway", append(fields, zap.String("charge_id", res.ChargeID))...)
	}
	return rec.Charged(res, p.now()), nil
}

// Cancel makes sure a cancelled order is charged nothing, and announces a
// refund. With no record yet, a void record stops any later charge. A
// succeeded charge is refunded. A charging record without an outcome event
// means a charge may exist (an attempt in flight, or one that timed out
// after the gateway took it): the gateway is asked again with the same key,
// which replays that charge or makes it, and a success is refunded at once.
// Errors are classified as for Process.
func (p *Processor) Cancel(ctx context.Context, c Cancellation) (Record, error) {
	if !events.ValidID(c.OrderID) {
		return Record{}, fmt.Errorf("order %q: %w", c.OrderID, ErrInvalidOrderID)
	}
	fields := append(logging.Order(c.OrderID, trace.TraceID(c.TraceParent)), zap.String("cancel_reason", c.Reason))
	var out Record
	err := kvstore.Retry(ctx, casRetry, func(ctx context.Context) (err error) {
		out, err = p.cancel(ctx, c, fields)
		return err
	})
	if errors.Is(err, ErrConflict) {
		return out, fmt.Errorf("payment of order %s: %w", c.OrderID, err)
	}
	return out, err
}

// cancel is one attempt of Cancel, on the record as it reads now; a
// conflict means another writer moved it on first.
func (p *Processor) cancel(ctx context.Context, c Cancellation, fields []zap.Field) (Record, error) {
	rec, rev, err := p.store.Load(ctx, c.OrderID)
	if errors.Is(err, ErrNotFound) {
		void := NewVoid(c.OrderID, c.Reason, p.now())
		if _, err := p.store.Create(ctx, void); err != nil {
			if errors.Is(err, ErrConflict) {
				return Record{}, err // the charge path wrote its intent first
			}
			return Record{}, fmt.Errorf("void payment of order %s: %w", c.OrderID, err)
		}
		p.log.Info("order cancelled before any charge: payment voided", fields...)
		return void, nil
	}
	if err != nil {
		return Record{}, fmt.Errorf("payment of order %s: %w", c.OrderID, err)
	}
	switch rec.Status {
	case StatusVoid, StatusFailed:
		return rec, nil // nothing was charged
	case StatusRefunded:
		return rec, p.announce(ctx, rec, c.TraceParent)
	case StatusCharging:
		return p.unpay(ctx, rec, c, fields)
	}
	// A succeeded record an earlier version wrote: refunded and
	// recorded by compare-and-set, as it did.
	next, err := p.refund(ctx, rec, c)
	if err != nil {
		return Record{}, err
	}
	if _, err := p.store.Update(ctx, next, rev); err != nil {
		if errors.Is(err, ErrConflict) {
			return Record{}, err // a repeated refund is a replay
		}
		return Record{}, fmt.Errorf("record refund of order %s: %w", c.OrderID, err)
	}
	p.log.Info("payment of a cancelled order refunded", append(fields,
		zap.String("charge_id", next.ChargeID), zap.String("refund_id", next.RefundID))...)
	return next, p.announce(ctx, next, c.TraceParent)
}

// unpay makes sure the order of a charging record ends up charged nothing.
// Without an outcome event the charge that may exist is settled with the
// record's key; a success is refunded. The refund is published after the
// order's last payment event: after the succeeded event it refunds, or as
// the first one, which makes the charge path's succeeded lose (it then
// reads the refund). A decline found here is announced as the charge path
// would.
func (p *Processor) unpay(ctx context.Context, rec Record, c Cancellation, fields []zap.Field) (Record, error) {
	cur, after, err := p.outcome(ctx, rec)
	if errors.Is(err, ErrNotFound) {
		cur, err = p.charge(ctx, rec, "", c.TraceParent, fields)
	}
	if err != nil {
		return Record{}, err
	}
	next := cur
	switch {
	case cur.Status == StatusSucceeded:
		if next, err = p.refund(ctx, cur, c); err != nil {
			return Record{}, err
		}
	case after != 0:
		return cur, nil // failed (nothing was charged) or refunded already
	}
	over, err := p.announceAfter(ctx, rec, next, c.TraceParent, after)
	if err == nil && over != nil && after == 0 && next.Status == StatusRefunded &&
		over.rec.Status == StatusSucceeded && over.rec.ChargeID == next.ChargeID {
		// The charge path announced this charge meanwhile: the refund follows.
		after = over.seq
		over, err = p.announceAfter(ctx, rec, next, c.TraceParent, after)
	}
	if err != nil {
		return Record{}, err
	}
	if over != nil {
		return Record{}, overtaken(next, over, after)
	}
	p.log.Info("payment of a cancelled order "+string(next.Status), append(fields,
		zap.String("charge_id", next.ChargeID), zap.String("refund_id", next.RefundID),
		zap.Int64("amount_cents", next.AmountCents), zap.String("currency", next.Currency))...)
	return next, nil
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

// Get returns the order's payment as it stands: its record, or for a
// charging record the outcome its payment event tells, once one is stored.
func (p *Processor) Get(ctx context.Context, orderID string) (Record, error) {
	rec, _, err := p.store.Load(ctx, orderID)
	if err != nil || rec.Status != StatusCharging {
		return rec, err
	}
	out, _, err := p.outcome(ctx, rec)
	if errors.Is(err, ErrNotFound) {
		return rec, nil
	}
	return out, err
}

// stored is an order's payment event read as the record it tells, with
// its stream sequence.
type stored struct {
	rec Record
	seq uint64
}

// outcome reads the last payment event of a charging record's order as
// the record it tells, or an error wrapping ErrNotFound when none is
// stored.
func (p *Processor) outcome(ctx context.Context, rec Record) (Record, uint64, error) {
	env, seq, err := p.outcomes.Last(ctx, rec.OrderID)
	if err != nil {
		return Record{}, 0, fmt.Errorf("outcome of order %s: %w", rec.OrderID, err)
	}
	out, err := rec.Outcome(env)
	if err != nil {
		return Record{}, 0, err
	}
	return out, seq, nil
}

// announceAfter publishes next's event if the order's last payment event is
// at stream sequence after (0: none yet); a repeat of it is done already.
// If another event came first, it is returned, read against the charging
// record rec, for the caller to judge.
func (p *Processor) announceAfter(ctx context.Context, rec, next Record, parent string, after uint64) (*stored, error) {
	typ, data, ok := next.Event()
	if !ok {
		return nil, fmt.Errorf("announce payment of order %s: %w: status %s announces nothing", next.OrderID, ErrInvalidRecord, next.Status)
	}
	_, err := p.pub.PublishAfter(ctx, typ, next.OrderID, trace.Child(parent).String(), data, after)
	var over *events.OvertakenError
	switch {
	case err == nil:
		return nil, nil
	case errors.As(err, &over):
		first, err := rec.Outcome(over.Stored)
		if err != nil {
			return nil, err
		}
		return &stored{rec: first, seq: over.Sequence}, nil
	default:
		return nil, fmt.Errorf("announce payment of order %s: %w", next.OrderID, err)
	}
}

// overtaken is the error of a payment event that came first but cannot
// have come from this payment (the same key gives the same answer).
func overtaken(next Record, first *stored, after uint64) error {
	return fmt.Errorf("payment of order %s: %w: %s (charge %s) stored at stream sequence %d where %s (charge %s) was to follow sequence %d",
		next.OrderID, events.ErrConflictingDuplicate, first.rec.Status, first.rec.ChargeID, first.seq, next.Status, next.ChargeID, after)
}

// announce publishes the record's event create-once, for records an
// earlier version wrote with their outcome: a second announce is a harmless
// duplicate. Charging and void records announce nothing.
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
