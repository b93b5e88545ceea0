package app

import "errors"

// ErrUnpublishable marks an event of the inventory's that the contract
// refuses (an invalid event or order id): building it again on a
// redelivery cannot repair it, so it is a permanent failure.
var ErrUnpublishable = errors.New("event cannot be published")

// marked is err made to match kind (errors.Is) without saying so in its
// message, which stays err's.
type marked struct {
	kind error
	err  error
}

func (m marked) Error() string   { return m.err.Error() }
func (m marked) Unwrap() []error { return []error{m.kind, m.err} }
