package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventshop/inventory-service/internal/stock"
)

// FuzzPutBody holds PUT /inventory/{sku}'s body decoding to its promise: a
// body it accepts sets a sellable item (a name, a price and stock that are
// not negative, a currency code), and the same value re-encoded is accepted
// again; a body it refuses is a 400 that says what is wrong, never a 500.
func FuzzPutBody(f *testing.F) {
	for _, s := range []string{
		`{"name":"Mug","price_cents":1299,"currency":"EUR","available":10}`,
		`{"name":"Mug","price_cents":0,"currency":"USD","available":0}`,
		`{"name":"Mug","price_cents":-1,"currency":"EUR","available":10}`,
		`{"name":"Mug","price_cents":1299,"currency":"eur","available":10}`,
		`{"name":"Mug","price_cents":1.5,"currency":"EUR","available":10}`,
		`{"name":"Mug","price_cents":1e30,"currency":"EUR","available":10}`,
		`{"name":"","price_cents":1,"currency":"EUR","available":1,"sold":5}`,
		`{"name":"M","price_cents":1,"currency":"EUR","available":1,"available":-4}`,
		`{"name":null,"price_cents":null,"currency":null,"available":null}`,
		`[]`, ``, `{`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePut(body)
		if err != nil {
			pr := MapError(err)
			if pr.Status != http.StatusBadRequest || strings.TrimSpace(pr.Detail) == "" && len(pr.Errors) == 0 {
				t.Fatalf("refused body %q: problem %+v, want a 400 that says what is wrong", body, pr)
			}
			return
		}
		it := stock.ApplyPut(stock.Item{Reserved: 3, Sold: 4}, "SKU-1", p, now)
		if it.Name == "" || it.PriceCents < 0 || it.Available < 0 || len(it.Currency) != 3 || it.Reserved != 3 || it.Sold != 4 {
			t.Fatalf("accepted body %q sets %+v", body, it)
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if q, err := decodePut(again); err != nil || q != p {
			t.Fatalf("accepted body %q re-encoded as %s: %+v, %v", body, again, q, err)
		}
	})
}
