package natsconn

import (
	"errors"

	"github.com/nats-io/nats.go/jetstream"
)

// IsWrongLastSequence reports whether err is JetStream refusing a publish
// whose expected last sequence (Nats-Expected-Last-Subject-Sequence or
// Nats-Expected-Last-Sequence) did not hold: a create-once duplicate or a
// lost compare-and-set. A single-replica stream answers with error code
// 10071, a replicated one with 10164; both are matched.
func IsWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
