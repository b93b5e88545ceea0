package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/platform/runner"
)

// Route hands the events of one type to the use case that handles them.
type Route struct {
	typ Type
	// handle decodes the payload and calls the use case with it: decodeErr
	// when the payload does not decode (the use case is not called), err
	// what the use case returned.
	handle func(ctx context.Context, env Envelope) (decodeErr, err error)
}

// On routes events of type t to handle, with their payload decoded into
// T, the type's Go payload (OrderCreatedData for OrderCreated, ...).
func On[T any](t Type, handle func(ctx context.Context, env Envelope, data T) error) Route {
	return Route{typ: t, handle: func(ctx context.Context, env Envelope) (error, error) {
		var data T
		if err := env.DecodeData(&data); err != nil {
			return err, nil
		}
		return nil, handle(ctx, env, data)
	}}
}

// Refusal reasons every consumer gives the same way.
const (
	// ReasonInvalidEvent: the event does not decode, or its consumer has
	// no use case for its type.
	ReasonInvalidEvent = "invalid_event"
	// ReasonConflictingDuplicate: the event the use case would publish is
	// already stored with other content (ErrConflictingDuplicate): not
	// written by the saga, or a bug; an operator decides.
	ReasonConflictingDuplicate = "conflicting_duplicate"
	// ReasonIllegalTransition: the event contradicts what the consumer's
	// service decided for the order (a cancellation of a sold order).
	ReasonIllegalTransition = "illegal_transition"
	// ReasonAmountMismatch: the event's amount is not the order's.
	ReasonAmountMismatch = "amount_mismatch"
)

// Verdict turns a use case's error about msg into the runner's handling
// (runner.Permanent, runner.Refused, runner.Wait, ...); nil stays nil.
type Verdict func(msg jetstream.Msg, err error) error

// Consume returns the runner.Handler of a consumer: it decodes each
// message once (Decode: the envelope, checked against its subject), hands
// it to the route of its type, which decodes the payload, and passes the
// use case's error through verdict, but for ErrConflictingDuplicate, which
// every consumer refuses as conflicting_duplicate. An event that does not decode, and
// one of a type no route takes, is refused as invalid_event: the
// consumer's filter let through what its service cannot handle, or a
// producer broke the contract, and retrying would not change it.
func Consume(verdict Verdict, routes ...Route) runner.Handler {
	byType := make(map[Type]Route, len(routes))
	for _, r := range routes {
		byType[r.typ] = r
	}
	return func(ctx context.Context, msg jetstream.Msg) error {
		env, err := Decode(msg.Subject(), msg.Data())
		if err != nil {
			return runner.Refused(ReasonInvalidEvent, fmt.Errorf("%s: %w", msg.Subject(), err))
		}
		route, ok := byType[env.Type]
		if !ok {
			return runner.Refused(ReasonInvalidEvent, fmt.Errorf("%s: %w: no use case for a %s event", msg.Subject(), ErrInvalidEvent, env.Type))
		}
		decodeErr, err := route.handle(ctx, env)
		if decodeErr != nil {
			return runner.Refused(ReasonInvalidEvent, fmt.Errorf("event %s on %s: %w", env.ID, msg.Subject(), decodeErr))
		}
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ErrConflictingDuplicate):
			return runner.Refused(ReasonConflictingDuplicate, err)
		default:
			return verdict(msg, err)
		}
	}
}
