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
			name:  "a line this order already reserved needs no more units",
			lines: []events.Item{{SKU: "MUG", Quantity: 3}, {SKU: "TEE", Quantity: 1}},
			catalogue: catalogue(stock.Item{SKU: "MUG", Name: "Mug", PriceCents: 1299, Currency: "USD", Available: 0, Reserved: 3,
				Marks: map[string]stock.Mark{"o-1": {Op: stock.OpReserve, Qty: 3}}}, tee),
			want: stock.Decision{Accepted: true, Currency: "USD", TotalCents: 3*1299 + 2000, Lines: []events.PricedLine{
				{SKU: "MUG", Name: "Mug", Quantity: 3, UnitPriceCents: 1299, LineTotalCents: 3 * 1299},
				{SKU: "TEE", Name: "T-shirt", Quantity: 1, UnitPriceCents: 2000, LineTotalCents: 2000},
			}},
		},
		{
			name:  "another order's mark holds nothing for this one",
			lines: []events.Item{{SKU: "MUG", Quantity: 1}},
			catalogue: catalogue(stock.Item{SKU: "MUG", Currency: "USD", Reserved: 3,
				Marks: map[string]stock.Mark{"o-2": {Op: stock.OpReserve, Qty: 3}}}),
			want: stock.Decision{Reason: events.ReasonInsufficientStock, SKU: "MUG", Detail: "want 1, available 0"},
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
			if got := stock.Decide("o-1", tt.lines, tt.catalogue); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestDecisionReservation(t *testing.T) {
	t.Parallel()
	cat := catalogue(mug, tee)
	d := stock.Decide("o-1", []events.Item{{SKU: "MUG", Quantity: 2}, {SKU: "TEE", Quantity: 1}}, cat)
	r := d.Reservation("o-1", "tp", now)
	if r.Status != stock.StatusReserved || r.TotalCents != 4598 || r.Currency != "USD" || len(r.Lines) != 2 {
		t.Fatalf("reservation = %+v", r)
	}
	rej := stock.Decide("o-2", []events.Item{{SKU: "X", Quantity: 1}}, cat)
	rr := rej.Reservation("o-2", "tp", now)
	if rr.Status != stock.StatusRejected || rr.Reason != events.ReasonUnknownSKU || rr.SKU != "X" || len(rr.Lines) != 0 {
		t.Fatalf("rejected reservation = %+v", rr)
	}
}

func TestItemApplyMarksEachChange(t *testing.T) {
	t.Parallel()
	held := stock.Item{SKU: "MUG", Available: 3, Reserved: 2, Sold: 1}
	tests := []struct {
		name    string
		item    stock.Item
		op      stock.Op
		qty     int64
		want    stock.Item
		wantErr error
	}{
		{name: "reserve", item: held, op: stock.OpReserve, qty: 3,
			want: stock.Item{SKU: "MUG", Available: 0, Reserved: 5, Sold: 1}},
		{name: "commit", item: held, op: stock.OpCommit, qty: 2,
			want: stock.Item{SKU: "MUG", Available: 3, Reserved: 0, Sold: 3}},
		{name: "release", item: held, op: stock.OpRelease, qty: 2,
			want: stock.Item{SKU: "MUG", Available: 5, Reserved: 0, Sold: 1}},
		{name: "reserve more than available", item: held, op: stock.OpReserve, qty: 4, wantErr: stock.ErrInvariant},
		{name: "commit more than reserved", item: held, op: stock.OpCommit, qty: 3, wantErr: stock.ErrInvariant},
		{name: "zero units", item: held, op: stock.OpRelease, qty: 0, wantErr: stock.ErrInvariant},
		{name: "unknown op", item: held, op: "steal", qty: 1, wantErr: stock.ErrInvalidTransition},
		{name: "the same change twice", op: stock.OpCommit, qty: 1, wantErr: stock.ErrInvariant,
			item: stock.Item{SKU: "MUG", Reserved: 1, Sold: 1, Marks: map[string]stock.Mark{"o-1": {Op: stock.OpCommit, Qty: 1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := tt.item.Total()
			got, err := tt.item.Apply("o-1", tt.op, tt.qty, now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Available != tt.want.Available || got.Reserved != tt.want.Reserved || got.Sold != tt.want.Sold || got.Total() != before {
				t.Fatalf("Apply = %+v, want %+v (total %d)", got, tt.want, before)
			}
			if !got.Marked("o-1", tt.op) || got.MarkedQty("o-1", tt.op) != tt.qty || !got.UpdatedAt.Equal(now) {
				t.Fatalf("Apply left marks %+v at %v, want %s of %d marked", got.Marks, got.UpdatedAt, tt.op, tt.qty)
			}
			if len(tt.item.Marks) != 0 {
				t.Fatal("Apply changed its input's marks")
			}
		})
	}
}

func TestUnreserveUndoesOnlyAMarkedReservation(t *testing.T) {
	t.Parallel()
	it, err := mug.Apply("o-1", stock.OpReserve, 2, now)
	if err != nil {
		t.Fatal(err)
	}
	it, err = it.Apply("o-2", stock.OpReserve, 1, now)
	if err != nil {
		t.Fatal(err)
	}
	back, changed, err := it.Unreserve("o-1", now)
	if err != nil || !changed {
		t.Fatalf("Unreserve(o-1) = %v, %v", changed, err)
	}
	if back.Available != 4 || back.Reserved != 1 || back.Marked("o-1", stock.OpReserve) || !back.Marked("o-2", stock.OpReserve) {
		t.Fatalf("after Unreserve(o-1): %+v", back)
	}
	if !it.Marked("o-1", stock.OpReserve) {
		t.Fatal("Unreserve changed its input")
	}
	again, changed, err := back.Unreserve("o-1", now)
	if err != nil || changed || !reflect.DeepEqual(again, back) {
		t.Fatalf("second Unreserve(o-1) = %+v, %v, %v; want nothing to undo", again, changed, err)
	}
	// A committed order's mark is not a reservation to undo.
	sold, err := back.Apply("o-2", stock.OpCommit, 1, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, changed, _ := sold.Unreserve("o-2", now); changed {
		t.Fatal("Unreserve undid a commit")
	}
	// A mark whose units are gone is an invariant breach, not a silent fix.
	broken := stock.Item{SKU: "MUG", Marks: map[string]stock.Mark{"o-9": {Op: stock.OpReserve, Qty: 2}}}
	if _, _, err := broken.Unreserve("o-9", now); !errors.Is(err, stock.ErrInvariant) {
		t.Fatalf("Unreserve of a mark without units err = %v, want ErrInvariant", err)
	}
}

func TestSweepDropsOnlyDecidedMarks(t *testing.T) {
	t.Parallel()
	it := stock.Item{SKU: "MUG", Marks: map[string]stock.Mark{
		"a": {Op: stock.OpReserve, Qty: 1}, // decided reserved: goes
		"b": {Op: stock.OpCommit, Qty: 1},  // decided reserved, but now committing: stays
		"c": {Op: stock.OpReserve, Qty: 1}, // not decided: stays
	}}
	got, swept := it.Sweep(map[string]stock.Op{"a": stock.OpReserve, "b": stock.OpReserve, "z": stock.OpCommit})
	if !swept || len(got.Marks) != 2 || got.Marked("a", stock.OpReserve) || !got.Marked("b", stock.OpCommit) || !got.Marked("c", stock.OpReserve) {
		t.Fatalf("Sweep = %+v, %v", got.Marks, swept)
	}
	if len(it.Marks) != 3 {
		t.Fatal("Sweep changed its input")
	}
	if same, swept := got.Sweep(map[string]stock.Op{"a": stock.OpReserve}); swept || !reflect.DeepEqual(same, got) {
		t.Fatalf("Sweep with nothing to drop = %+v, %v", same, swept)
	}
	last, _ := got.Sweep(map[string]stock.Op{"b": stock.OpCommit, "c": stock.OpReserve})
	if last.Marks != nil {
		t.Fatalf("Sweep of every mark left %#v, want nil (omitted from JSON)", last.Marks)
	}
}

func TestReservationClaimAndFinish(t *testing.T) {
	t.Parallel()
	reserved := stock.Reservation{OrderID: "o-1", Status: stock.StatusReserved,
		Lines: []events.PricedLine{{SKU: "MUG", Quantity: 2, UnitPriceCents: 1, LineTotalCents: 2}}}
	tests := []struct {
		name     string
		from     stock.Reservation
		to       stock.Status
		wantOp   stock.Op
		wantDone stock.Status
		wantErr  error
	}{
		{name: "commit", from: reserved, to: stock.StatusCommitting, wantOp: stock.OpCommit, wantDone: stock.StatusCommitted},
		{name: "release", from: reserved, to: stock.StatusReleasing, wantOp: stock.OpRelease, wantDone: stock.StatusReleased},
		{name: "claim to a final status", from: reserved, to: stock.StatusReleased, wantErr: stock.ErrInvalidTransition},
		{name: "release twice", from: stock.Reservation{OrderID: "o-1", Status: stock.StatusReleased}, to: stock.StatusReleasing, wantErr: stock.ErrInvalidTransition},
		{name: "commit a releasing order", from: stock.Reservation{OrderID: "o-1", Status: stock.StatusReleasing}, to: stock.StatusCommitting, wantErr: stock.ErrInvalidTransition},
		{name: "commit a rejected order", from: stock.Reservation{OrderID: "o-1", Status: stock.StatusRejected}, to: stock.StatusCommitting, wantErr: stock.ErrInvalidTransition},
		{name: "commit a void order", from: stock.Reservation{OrderID: "o-1", Status: stock.StatusVoid}, to: stock.StatusCommitting, wantErr: stock.ErrInvalidTransition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			claimed, err := tt.from.Claim(tt.to, now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			op, err := claimed.Op()
			if err != nil || op != tt.wantOp {
				t.Fatalf("Op = %s, %v; want %s", op, err, tt.wantOp)
			}
			done, err := claimed.Finish(now)
			if err != nil || done.Status != tt.wantDone || !reflect.DeepEqual(done.Lines, reserved.Lines) {
				t.Fatalf("Finish = %+v, %v; want %s", done, err, tt.wantDone)
			}
			if _, err := done.Finish(now); !errors.Is(err, stock.ErrInvalidTransition) {
				t.Fatalf("Finish twice err = %v", err)
			}
			if _, err := done.Op(); !errors.Is(err, stock.ErrInvalidTransition) {
				t.Fatalf("Op of %s err = %v", done.Status, err)
			}
			if want := []events.Item{{SKU: "MUG", Quantity: 2}}; !reflect.DeepEqual(done.Items(), want) {
				t.Fatalf("Items() = %v, want %v", done.Items(), want)
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
		{name: "restock keeps reserved, sold and the marks of orders in flight",
			cur:  stock.Item{SKU: "MUG", Name: "Old", PriceCents: 1, Currency: "EUR", Available: 1, Reserved: 4, Sold: 7, Marks: map[string]stock.Mark{"o-1": {Op: stock.OpReserve, Qty: 4}}},
			put:  stock.Put{Name: "Mug", PriceCents: 1299, Currency: "USD", Available: 10},
			want: stock.Item{SKU: "MUG", Name: "Mug", PriceCents: 1299, Currency: "USD", Available: 10, Reserved: 4, Sold: 7, UpdatedAt: now, Marks: map[string]stock.Mark{"o-1": {Op: stock.OpReserve, Qty: 4}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := stock.ApplyPut(tt.cur, "MUG", tt.put, now); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ApplyPut = %+v, want %+v", got, tt.want)
			}
		})
	}
}
