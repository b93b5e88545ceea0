package app

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/eventshop/inventory-service/internal/stock"
)

// Get returns the item of sku as its orders' decisions make it (a
// committed order's units sold, a released one's available), or an error
// wrapping stock.ErrUnknownSKU.
func (a *App) Get(ctx context.Context, sku string) (stock.Item, error) {
	it, _, err := a.res.View(ctx, sku)
	return it, err
}

// List returns every catalogue item as Get shows it, sorted by SKU.
func (a *App) List(ctx context.Context) ([]stock.Item, error) {
	return a.res.Items(ctx)
}

// Put sets what an administrator says of sku: its description, its price
// and the units for sale. It returns the item as written and whether it
// was created.
func (a *App) Put(ctx context.Context, sku string, p stock.Put) (stock.Item, bool, error) {
	var (
		out     stock.Item
		created bool
	)
	// Reservations move the same record concurrently: read, apply, write
	// at the revision read, and start again if it moved. The PUT sets what
	// is for sale on the view Get shows: units of orders already settled
	// are counted where they belong before it, never added on top of it by
	// a later write.
	err := a.retry.do(ctx, "put", func(ctx context.Context) error {
		cur, rev, err := a.res.View(ctx, sku)
		if errors.Is(err, stock.ErrUnknownSKU) {
			it := stock.ApplyPut(stock.Item{}, sku, p, a.now())
			if _, err := a.store.CreateItem(ctx, it); err != nil {
				return err
			}
			out, created = it, true
			return nil
		}
		if err != nil {
			return err
		}
		it := stock.ApplyPut(cur, sku, p, a.now())
		if _, err := a.res.WriteItem(ctx, it, rev); err != nil {
			return err
		}
		out, created = it, false
		return nil
	})
	if err != nil {
		return stock.Item{}, false, err
	}
	a.log.Info("stock set", zap.String("sku", sku), zap.Bool("created", created), zap.Int64("available", out.Available),
		zap.Int64("reserved", out.Reserved), zap.Int64("sold", out.Sold), zap.Int64("price_cents", out.PriceCents),
		zap.String("currency", out.Currency))
	return out, created, nil
}
