package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/eventshop/order-service/internal/app"
	"github.com/eventshop/order-service/internal/httpapi"
	"github.com/eventshop/order-service/internal/order"
	"github.com/eventshop/order-service/internal/store"
	"github.com/eventshop/shared/events"
)

func TestMapError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantType   string
	}{
		{name: "invalid body", err: &httpapi.RequestError{Errors: []string{"/items: minItems"}}, wantStatus: http.StatusBadRequest, wantType: "invalid-request"},
		{name: "long idempotency key", err: fmt.Errorf("x: %w", httpapi.ErrInvalidIdempotencyKey), wantStatus: http.StatusBadRequest, wantType: "invalid-idempotency-key"},
		{name: "key reused", err: app.ErrIdempotencyKeyReused, wantStatus: http.StatusUnprocessableEntity, wantType: "idempotency-key-reused"},
		{name: "no customer", err: httpapi.ErrMissingCustomer, wantStatus: http.StatusBadRequest, wantType: "missing-customer-id"},
		{name: "bad id", err: fmt.Errorf("id: %w", events.ErrInvalidID), wantStatus: http.StatusBadRequest, wantType: "invalid-order-id"},
		{name: "not found", err: fmt.Errorf("get: %w", order.ErrNotFound), wantStatus: http.StatusNotFound, wantType: "order-not-found"},
		{name: "bad limit", err: fmt.Errorf("x: %w", httpapi.ErrInvalidLimit), wantStatus: http.StatusBadRequest, wantType: "invalid-limit"},
		{name: "bad cursor", err: fmt.Errorf("x: %w", httpapi.ErrInvalidCursor), wantStatus: http.StatusBadRequest, wantType: "invalid-cursor"},
		{name: "invalid stored events", err: fmt.Errorf("%w: created event", app.ErrCorrupt), wantStatus: http.StatusConflict, wantType: "order-events-invalid"},
		{name: "store down", err: fmt.Errorf("%w: boom", store.ErrUnavailable), wantStatus: http.StatusServiceUnavailable, wantType: "unavailable"},
		{name: "timeout", err: fmt.Errorf("publish: %w", context.DeadlineExceeded), wantStatus: http.StatusServiceUnavailable, wantType: "unavailable"},
		{name: "bug", err: errors.New("nil map"), wantStatus: http.StatusInternalServerError, wantType: "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := httpapi.MapError(tt.err)
			if p.Status != tt.wantStatus || p.Type != "urn:eventshop:problem:"+tt.wantType {
				t.Fatalf("MapError(%v) = %+v, want %d %s", tt.err, p, tt.wantStatus, tt.wantType)
			}
		})
	}
	if p := httpapi.MapError(&httpapi.RequestError{Errors: []string{"a", "b"}}); len(p.Errors) != 2 {
		t.Fatalf("invalid-request problem lists %v, want both errors", p.Errors)
	}
}
