package stock_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/events"
)

var now = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func catalogue(items ...stock.Item) map[string]stock.Item {
	m := map[string]stock.Item{}
	for _, it := range items {
		m[it.SKU] = it
	}
	return m
}

var (
	mug   = stock.Item{SKU: "MUG", Name: "Mug", PriceCents: 1299, Currency: "USD", Available: 5}
	tee   = stock.Item{SKU: "TEE", Name: "T-shirt", PriceCents: 2000, Currency: "USD", Available: 1}
	euros = stock.Item{SKU: "CAP", Name: "Cap", PriceCents: 900, Currency: "EUR", Available: 9}
)

func TestMergeLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lines []events.Item
		want  []events.Item
	}{
		{name: "distinct", lines: []events.Item{{SKU: "A", Quantity: 1}, {SKU: "B", Quantity: 2}}, want: []events.Item{{SKU: "A", Quantity: 1}, {SKU: "B", Quantity: 2}}},
		{name: "repeated sku summed in first position", lines: []events.Item{{SKU: "B", Quantity: 1}, {SKU: "A", Quantity: 2}, {SKU: "B", Quantity: 3}}, want: []events.Item{{SKU: "B", Quantity: 4}, {SKU: "A", Quantity: 2}}},
		{name: "empty", lines: nil, want: []events.Item{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := stock.MergeLines(tt.lines); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("MergeLines = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		lines     []events.Item
		catalogue map[string]stock.Item
		want      stock.Decision
	}{
		{
			name:      "accepted, priced",
			lines:     []events.Item{{SKU: "MUG", Quantity: 2}, {SKU: "TEE", Quantity: 1}},
			catalogue: catalogue(mug, tee),
			want: stock.Decision{Accepted: true, Currency: "USD", TotalCents: 2*1299 + 2000, Lines: []events.PricedLine{
				{SKU: "MUG", Name: "Mug", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: 2598},
				{SKU: "TEE", Name: "T-shirt", Quantity: 1, UnitPriceCents: 2000, LineTotalCents: 2000},
			}},
		},
		{
			name:      "exactly what is available",
			lines:     []events.Item{{SKU: "MUG", Quantity: 5}},
			catalogue: catalogue(mug),
			want: stock.Decision{Accepted: true, Currency: "USD", TotalCents: 5 * 1299, Lines: []events.PricedLine{
				{SKU: "MUG", Name: "Mug", Quantity: 5, UnitPriceCents: 1299, LineTotalCents: 5 * 1299},
			}},
		},
		{
			name:      "unknown sku",
			lines:     []events.Item{{SKU: "MUG", Quantity: 1}, {SKU: "NOPE", Quantity: 1}},
			catalogue: catalogue(mug),
			want:      stock.Decision{Reason: events.ReasonUnknownSKU, SKU: "NOPE", Detail: "sku NOPE is not in the catalogue"},
		},
		{
			name:      "unknown sku wins over a short line",
			lines:     []events.Item{{SKU: "TEE", Quantity: 9}, {SKU: "NOPE", Quantity: 1}},
			catalogue: catalogue(tee),
			want:      stock.Decision{Reason: events.ReasonUnknownSKU, SKU: "NOPE", Detail: "sku NOPE is not in the catalogue"},
		},
		{
			name:      "second line short",
			lines:     []events.Item{{SKU: "MUG", Quantity: 1}, {SKU: "TEE", Quantity: 2}},
			catalogue: catalogue(mug, tee),
			want:      stock.Decision{Reason: events.ReasonInsufficientStock, SKU: "TEE", Detail: "want 2, available 1"},
		},
		{
			name:      "nothing available",
			lines:     []events.Item{{SKU: "MUG", Quantity: 1}},
			catalogue: catalogue(stock.Item{SKU: "MUG", Currency: "USD", Reserved: 3, Sold: 2}),
			want:      stock.Decision{Reason: events.ReasonInsufficientStock, SKU: "MUG", Detail: "want 1, available 0"},
		},
		{
			name:      "currencies differ",
			lines:     []events.Item{{SKU: "MUG", Quantity: 1}, {SKU: "CAP", Quantity: 1}},
			catalogue: catalogue(mug, euros),
			want:      stock.Decision{Reason: events.ReasonCurrencyMismatch, SKU: "CAP", Detail: "sku CAP is priced in EUR, sku MUG in USD"},
		},
		{
			name:      "no lines",
			catalogue: catalogue(mug),
			want:      stock.Decision{Reason: events.ReasonUnknownSKU, Detail: "the order has no lines"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := stock.Decide(tt.lines, tt.catalogue); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestDecisionReservationAndReserve(t *testing.T) {
	t.Parallel()
	cat := catalogue(mug, tee)
	d := stock.Decide([]events.Item{{SKU: "MUG", Quantity: 2}, {SKU: "TEE", Quantity: 1}}, cat)
	r := d.Reservation("o-1", "tp", now)
	if r.Status != stock.StatusReserved || r.TotalCents != 4598 || r.Currency != "USD" || len(r.Lines) != 2 {
		t.Fatalf("reservation = %+v", r)
	}
	got, err := d.Reserve(cat, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []stock.Item{
		{SKU: "MUG", Name: "Mug", PriceCents: 1299, Currency: "USD", Available: 3, Reserved: 2, UpdatedAt: now},
		{SKU: "TEE", Name: "T-shirt", PriceCents: 2000, Currency: "USD", Available: 0, Reserved: 1, UpdatedAt: now},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Reserve = %+v, want %+v", got, want)
	}
	if cat["MUG"].Available != 5 {
		t.Fatal("Reserve changed its input")
	}
	// Stock that shrank since the decision is caught, not driven negative.
	if _, err := d.Reserve(catalogue(mug, stock.Item{SKU: "TEE"}), now); !errors.Is(err, stock.ErrInvariant) {
		t.Fatalf("Reserve on shrunk stock err = %v, want ErrInvariant", err)
	}
	rej := stock.Decide([]events.Item{{SKU: "X", Quantity: 1}}, cat)
	rr := rej.Reservation("o-2", "tp", now)
	if rr.Status != stock.StatusRejected || rr.Reason != events.ReasonUnknownSKU || rr.SKU != "X" || len(rr.Lines) != 0 {
		t.Fatalf("rejected reservation = %+v", rr)
	}
	if _, err := rej.Reserve(cat, now); !errors.Is(err, stock.ErrInvalidTransition) {
		t.Fatalf("Reserve(rejected) err = %v, want ErrInvalidTransition", err)
	}
}

func TestReleaseAndCommit(t *testing.T) {
	t.Parallel()
	held := stock.Item{SKU: "MUG", Available: 3, Reserved: 2, Sold: 1}
	reserved := stock.Reservation{OrderID: "o-1", Status: stock.StatusReserved,
		Lines: []events.PricedLine{{SKU: "MUG", Quantity: 2, UnitPriceCents: 1, LineTotalCents: 2}}}
	type op func(stock.Reservation, map[string]stock.Item, time.Time) (stock.Reservation, []stock.Item, error)
	release := stock.Reservation.Release
	commit := stock.Reservation.Commit
	tests := []struct {
		name       string
		op         op
		res        stock.Reservation
		items      map[string]stock.Item
		wantStatus stock.Status
		wantItem   stock.Item
		wantErr    error
	}{
		{name: "release", op: release, res: reserved, items: catalogue(held), wantStatus: stock.StatusReleased,
			wantItem: stock.Item{SKU: "MUG", Available: 5, Reserved: 0, Sold: 1, UpdatedAt: now}},
		{name: "commit", op: commit, res: reserved, items: catalogue(held), wantStatus: stock.StatusCommitted,
			wantItem: stock.Item{SKU: "MUG", Available: 3, Reserved: 0, Sold: 3, UpdatedAt: now}},
		{name: "release twice", op: release, res: stock.Reservation{OrderID: "o-1", Status: stock.StatusReleased}, items: catalogue(held), wantErr: stock.ErrInvalidTransition},
		{name: "commit a rejected order", op: commit, res: stock.Reservation{OrderID: "o-1", Status: stock.StatusRejected}, items: catalogue(held), wantErr: stock.ErrInvalidTransition},
		{name: "commit a void order", op: commit, res: stock.Reservation{OrderID: "o-1", Status: stock.StatusVoid}, items: catalogue(held), wantErr: stock.ErrInvalidTransition},
		{name: "reserved count too low", op: release, res: reserved, items: catalogue(stock.Item{SKU: "MUG", Reserved: 1}), wantErr: stock.ErrInvariant},
		{name: "sku gone", op: commit, res: reserved, items: catalogue(), wantErr: stock.ErrInvariant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, items, err := tt.op(tt.res, tt.items, now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.wantStatus || len(items) != 1 || items[0] != tt.wantItem {
				t.Fatalf("got %s %+v, want %s %+v", got.Status, items, tt.wantStatus, tt.wantItem)
			}
			if items[0].Total() != held.Total() {
				t.Fatalf("total changed: %d -> %d", held.Total(), items[0].Total())
			}
			if want := []events.Item{{SKU: "MUG", Quantity: 2}}; !reflect.DeepEqual(got.Items(), want) {
				t.Fatalf("Items() = %v, want %v", got.Items(), want)
			}
		})
	}
}

func TestApplyPut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cur  stock.Item
		put  stock.Put
		want stock.Item
	}{
		{name: "new sku", put: stock.Put{Name: "Mug", PriceCents: 1299, Currency: "USD", Available: 10},
			want: stock.Item{SKU: "MUG", Name: "Mug", PriceCents: 1299, Currency: "USD", Available: 10, UpdatedAt: now}},
		{name: "restock keeps reserved and sold", cur: stock.Item{SKU: "MUG", Name: "Old", PriceCents: 1, Currency: "EUR", Available: 1, Reserved: 4, Sold: 7},
			put:  stock.Put{Name: "Mug", PriceCents: 1299, Currency: "USD", Available: 10},
			want: stock.Item{SKU: "MUG", Name: "Mug", PriceCents: 1299, Currency: "USD", Available: 10, Reserved: 4, Sold: 7, UpdatedAt: now}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := stock.ApplyPut(tt.cur, "MUG", tt.put, now); got != tt.want {
				t.Errorf("ApplyPut = %+v, want %+v", got, tt.want)
			}
		})
	}
}
