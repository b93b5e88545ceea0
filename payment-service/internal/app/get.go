package app

import (
	"context"
	"errors"

	"github.com/eventshop/payment-service/internal/payment"
)

// Get returns the order's payment as it stands: its record, or for a
// charging record the outcome its payment event tells, once one is stored.
// Errors wrap payment.ErrNotFound, payment.ErrInvalidRecord or
// events.ErrConflictingDuplicate, or are transient.
func (a *App) Get(ctx context.Context, orderID string) (payment.Record, error) {
	rec, _, err := a.store.Load(ctx, orderID)
	if err != nil || rec.Status != payment.StatusCharging {
		return rec, err
	}
	out, _, err := a.outcome(ctx, rec)
	if errors.Is(err, payment.ErrNotFound) {
		return rec, nil
	}
	return out, err
}
