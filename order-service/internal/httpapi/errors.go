package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/eventshop/order-service/internal/app"
	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/problem"
)

// Sentinel errors of the HTTP API.
var (
	// ErrInvalidRequest marks a body that fails the request schema.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInvalidIdempotencyKey marks an Idempotency-Key header that is too long.
	ErrInvalidIdempotencyKey = errors.New("invalid idempotency key")
	// ErrMissingCustomer marks GET /orders without customer_id.
	ErrMissingCustomer = errors.New("customer_id is required")
	// ErrInvalidLimit marks a page size out of range.
	ErrInvalidLimit = errors.New("invalid limit")
	// ErrInvalidCursor marks a cursor the API did not answer.
	ErrInvalidCursor = errors.New("invalid cursor")
)

// RequestError is a request body that fails validation, with each problem.
type RequestError struct {
	Errors []string
}

func (e *RequestError) Error() string {
	return ErrInvalidRequest.Error() + ": " + strings.Join(e.Errors, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalidRequest) true.
func (e *RequestError) Unwrap() error { return ErrInvalidRequest }

// requestError turns a schema validation error into a RequestError listing
// each failing location.
func requestError(err error) *RequestError {
	var ve *events.ValidationError
	if errors.As(err, &ve) {
		return &RequestError{Errors: ve.Problems}
	}
	return &RequestError{Errors: []string{err.Error()}}
}

// MapError is the one place the order service's errors become problems.
func MapError(err error) problem.Problem {
	var re *RequestError
	switch {
	case errors.As(err, &re):
		p := problem.New(http.StatusBadRequest, "invalid-request", "the request body is not a valid order")
		p.Errors = re.Errors
		return p
	case errors.Is(err, ErrInvalidIdempotencyKey):
		return problem.New(http.StatusBadRequest, "invalid-idempotency-key", err.Error())
	case errors.Is(err, app.ErrIdempotencyKeyReused):
		return problem.New(http.StatusUnprocessableEntity, "idempotency-key-reused",
			"this Idempotency-Key was already used with a different request body")
	case errors.Is(err, ErrMissingCustomer):
		return problem.New(http.StatusBadRequest, "missing-customer-id", "the customer_id query parameter is required")
	case errors.Is(err, events.ErrInvalidID):
		return problem.New(http.StatusBadRequest, "invalid-order-id", "an order id is 1-64 letters, digits, '_' or '-'")
	case errors.Is(err, ErrInvalidLimit):
		return problem.New(http.StatusBadRequest, "invalid-limit", "limit must be a whole number from 1 to 200")
	case errors.Is(err, ErrInvalidCursor):
		return problem.New(http.StatusBadRequest, "invalid-cursor",
			"cursor must be the next value of a previous page, unchanged; leave it out for the first page")
	case errors.Is(err, order.ErrNotFound):
		return problem.New(http.StatusNotFound, "order-not-found", "no such order")
	case errors.Is(err, app.ErrCorrupt):
		// Its events are stored but are not what the order service
		// writes (a created event that fails its checks, say): nothing
		// trustworthy can be shown, and retrying will not change that.
		return problem.New(http.StatusConflict, "order-events-invalid",
			"this order's stored events are invalid (not what the order service writes), so it cannot be shown")
	case errors.Is(err, app.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded):
		return problem.New(http.StatusServiceUnavailable, "unavailable", "the order store is unreachable; retry later")
	}
	return problem.Internal()
}
