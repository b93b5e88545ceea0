package app

import (
	"errors"
	"fmt"

	"github.com/eventshop/shared/events"
)

// ErrWrongSource marks an event whose source is not the service that owns
// the stream it was stored on: a credential allowed to publish there (or a
// bug) claiming to speak for another service. The trail holds only events
// whose origin it can vouch for.
var ErrWrongSource = errors.New("event source is not the owner of its stream")

// owners names the only service that publishes on each domain stream, as
// its events' source (the service's Name, given to events.NewPublisher).
var owners = map[string]string{
	events.StreamOrders:        "order-service",
	events.StreamInventory:     "inventory-service",
	events.StreamPayments:      "payment-service",
	events.StreamNotifications: "notification-service",
}

// checkSource reports whether an event read from stream may claim source.
func checkSource(stream, source string) error {
	owner, ok := owners[stream]
	if !ok {
		return fmt.Errorf("%w: stream %s has no known owner", ErrWrongSource, stream)
	}
	if source != owner {
		return fmt.Errorf("%w: source %q, but only %s publishes on %s", ErrWrongSource, source, owner, stream)
	}
	return nil
}
