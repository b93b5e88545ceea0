package app_test

import (
	"testing"

	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/events"
)

// The domain's rejection reasons are carried as they are by
// inventory.rejected: they must be the contract's words.
func TestRejectionReasonsAreTheContracts(t *testing.T) {
	t.Parallel()
	for domain, contract := range map[string]string{
		stock.ReasonUnknownSKU:        events.ReasonUnknownSKU,
		stock.ReasonInsufficientStock: events.ReasonInsufficientStock,
		stock.ReasonCurrencyMismatch:  events.ReasonCurrencyMismatch,
	} {
		if domain != contract {
			t.Errorf("stock reason %q, contract %q", domain, contract)
		}
	}
}
