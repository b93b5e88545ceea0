package app

import (
	"context"

	"github.com/eventshop/audit-service/internal/chain"
)

// Timeline returns the entries of orderID in chain order, or
// chain.ErrNotFound.
func (a *App) Timeline(ctx context.Context, orderID string) ([]chain.Entry, error) {
	return a.reader.Timeline(ctx, orderID)
}

// Verify recomputes the whole chain.
func (a *App) Verify(ctx context.Context) (chain.Result, error) {
	return a.reader.Verify(ctx)
}
