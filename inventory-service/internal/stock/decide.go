package stock

import (
	"fmt"
	"time"
)

// Rejection reasons, as the inventory.rejected event carries them.
const (
	ReasonUnknownSKU        = "unknown_sku"
	ReasonInsufficientStock = "insufficient_stock"
	ReasonCurrencyMismatch  = "currency_mismatch"
)

// Line is one requested line of an order: a SKU and a quantity.
type Line struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// PricedLine is an order line priced from the catalogue; a reservation
// record stores its lines so.
type PricedLine struct {
	SKU            string `json:"sku"`
	Name           string `json:"name"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
	LineTotalCents int64  `json:"line_total_cents"`
}

// MergeLines sums the quantities of repeated SKUs, keeping the order in
// which each SKU first appears: a SKU is one KV key and carries one mark per
// order, so an order changes it once.
func MergeLines(items []Line) []Line {
	idx := make(map[string]int, len(items))
	out := make([]Line, 0, len(items))
	for _, it := range items {
		if i, ok := idx[it.SKU]; ok {
			out[i].Quantity += it.Quantity
			continue
		}
		idx[it.SKU] = len(out)
		out = append(out, it)
	}
	return out
}

// Decision is the outcome of trying to reserve an order: either priced
// lines to reserve, or a rejection with its reason.
type Decision struct {
	Accepted   bool
	Lines      []PricedLine
	TotalCents int64
	Currency   string
	// Rejection: one of the Reason* values, the SKU at fault and a
	// human-readable detail.
	Reason string
	SKU    string
	Detail string
}

func reject(reason, sku, detail string) Decision {
	return Decision{Reason: reason, SKU: sku, Detail: detail}
}

// Decide decides whether orderID's lines (already merged) can be reserved
// against catalogue, which holds the current state of every known SKU among
// them. A line already reserved for the order (marked on its item) holds
// its units and needs no more.
//
// Rejections are checked in this order: an unknown SKU, then SKUs priced
// in different currencies (the order can never be paid, whatever the
// stock), then a line asking for more than is available.
//
// Money cannot overflow: the order schema bounds a line to 10 000 units and
// 100 lines, the put schema a price to 10^11 cents, so a total stays under
// 10^17.
func Decide(orderID string, lines []Line, catalogue map[string]Item) Decision {
	for _, l := range lines {
		if _, ok := catalogue[l.SKU]; !ok {
			return reject(ReasonUnknownSKU, l.SKU, fmt.Sprintf("sku %s is not in the catalogue", l.SKU))
		}
	}
	if len(lines) == 0 {
		return reject(ReasonUnknownSKU, "", "the order has no lines")
	}
	first := catalogue[lines[0].SKU]
	for _, l := range lines[1:] {
		if it := catalogue[l.SKU]; it.Currency != first.Currency {
			return reject(ReasonCurrencyMismatch, l.SKU,
				fmt.Sprintf("sku %s is priced in %s, sku %s in %s", l.SKU, it.Currency, first.SKU, first.Currency))
		}
	}
	d := Decision{Accepted: true, Currency: first.Currency, Lines: make([]PricedLine, 0, len(lines))}
	for _, l := range lines {
		it := catalogue[l.SKU]
		if !it.Marked(orderID, OpReserve) && l.Quantity > it.Available {
			return reject(ReasonInsufficientStock, l.SKU, fmt.Sprintf("want %d, available %d", l.Quantity, it.Available))
		}
		line := PricedLine{
			SKU:            l.SKU,
			Name:           it.Name,
			Quantity:       l.Quantity,
			UnitPriceCents: it.PriceCents,
			LineTotalCents: l.Quantity * it.PriceCents,
		}
		d.Lines = append(d.Lines, line)
		d.TotalCents += line.LineTotalCents
	}
	return d
}

// Reservation returns the record of the decision for orderID.
func (d Decision) Reservation(orderID, traceparent string, now time.Time) Reservation {
	r := Reservation{OrderID: orderID, TraceParent: traceparent, UpdatedAt: now.UTC()}
	if !d.Accepted {
		r.Status, r.Reason, r.SKU, r.Detail = StatusRejected, d.Reason, d.SKU, d.Detail
		return r
	}
	r.Status, r.Lines, r.TotalCents, r.Currency, r.KeepsMarks = StatusReserved, d.Lines, d.TotalCents, d.Currency, true
	return r
}
