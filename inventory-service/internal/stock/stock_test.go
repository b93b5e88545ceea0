package stock_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/eventshop/inventory-service/internal/stock"
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
		lines []stock.Line
		want  []stock.Line
	}{
		{name: "distinct", lines: []stock.Line{{SKU: "A", Quantity: 1}, {SKU: "B", Quantity: 2}}, want: []stock.Line{{SKU: "A", Quantity: 1}, {SKU: "B", Quantity: 2}}},
		{name: "repeated sku summed in first position", lines: []stock.Line{{SKU: "B", Quantity: 1}, {SKU: "A", Quantity: 2}, {SKU: "B", Quantity: 3}}, want: []stock.Line{{SKU: "B", Quantity: 4}, {SKU: "A", Quantity: 2}}},
		{name: "empty", lines: nil, want: []stock.Line{}},
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
		lines     []stock.Line
		catalogue map[string]stock.Item
		want      stock.Decision
	}{
		{
			name:      "accepted, priced",
			lines:     []stock.Line{{SKU: "MUG", Quantity: 2}, {SKU: "TEE", Quantity: 1}},
			catalogue: catalogue(mug, tee),
			want: stock.Decision{Accepted: true, Currency: "USD", TotalCents: 2*1299 + 2000, Lines: []stock.PricedLine{
				{SKU: "MUG", Name: "Mug", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: 2598},
				{SKU: "TEE", Name: "T-shirt", Quantity: 1, UnitPriceCents: 2000, LineTotalCents: 2000},
			}},
		},
		{
			name:      "exactly what is available",
			lines:     []stock.Line{{SKU: "MUG", Quantity: 5}},
			catalogue: catalogue(mug),
			want: stock.Decision{Accepted: true, Currency: "USD", TotalCents: 5 * 1299, Lines: []stock.PricedLine{
				{SKU: "MUG", Name: "Mug", Quantity: 5, UnitPriceCents: 1299, LineTotalCents: 5 * 1299},
			}},
		},
		{
			name:      "unknown sku",
			lines:     []stock.Line{{SKU: "MUG", Quantity: 1}, {SKU: "NOPE", Quantity: 1}},
			catalogue: catalogue(mug),
			want:      stock.Decision{Reason: stock.ReasonUnknownSKU, SKU: "NOPE", Detail: "sku NOPE is not in the catalogue"},
		},
		{
			name:      "unknown sku wins over a short line",
			lines:     []stock.Line{{SKU: "TEE", Quantity: 9}, {SKU: "NOPE", Quantity: 1}},
			catalogue: catalogue(tee),
			want:      stock.Decision{Reason: stock.ReasonUnknownSKU, SKU: "NOPE", Detail: "sku NOPE is not in the catalogue"},
		},
		{
			name:      "second line short",
			lines:     []stock.Line{{SKU: "MUG", Quantity: 1}, {SKU: "TEE", Quantity: 2}},
			catalogue: catalogue(mug, tee),
			want:      stock.Decision{Reason: stock.ReasonInsufficientStock, SKU: "TEE", Detail: "want 2, available 1"},
		},
		{
			name:      "nothing available",
			lines:     []stock.Line{{SKU: "MUG", Quantity: 1}},
			catalogue: catalogue(stock.Item{SKU: "MUG", Currency: "USD", Reserved: 3, Sold: 2}),
			want:      stock.Decision{Reason: stock.ReasonInsufficientStock, SKU: "MUG", Detail: "want 1, available 0"},
		},
		{
			name:      "currencies differ",
			lines:     []stock.Line{{SKU: "MUG", Quantity: 1}, {SKU: "CAP", Quantity: 1}},
			catalogue: catalogue(mug, euros),
			want:      stock.Decision{Reason: stock.ReasonCurrencyMismatch, SKU: "CAP", Detail: "sku CAP is priced in EUR, sku MUG in USD"},
		},
		{
			name:  "a line this order already reserved needs no more units",
			lines: []stock.Line{{SKU: "MUG", Quantity: 3}, {SKU: "TEE", Quantity: 1}},
			catalogue: catalogue(stock.Item{SKU: "MUG", Name: "Mug", PriceCents: 1299, Currency: "USD", Available: 0, Reserved: 3,
				Marks: map[string]stock.Mark{"o-1": {Op: stock.OpReserve, Qty: 3}}}, tee),
			want: stock.Decision{Accepted: true, Currency: "USD", TotalCents: 3*1299 + 2000, Lines: []stock.PricedLine{
				{SKU: "MUG", Name: "Mug", Quantity: 3, UnitPriceCents: 1299, LineTotalCents: 3 * 1299},
				{SKU: "TEE", Name: "T-shirt", Quantity: 1, UnitPriceCents: 2000, LineTotalCents: 2000},
			}},
		},
		{
			name:  "another order's mark holds nothing for this one",
			lines: []stock.Line{{SKU: "MUG", Quantity: 1}},
			catalogue: catalogue(stock.Item{SKU: "MUG", Currency: "USD", Reserved: 3,
				Marks: map[string]stock.Mark{"o-2": {Op: stock.OpReserve, Qty: 3}}}),
			want: stock.Decision{Reason: stock.ReasonInsufficientStock, SKU: "MUG", Detail: "want 1, available 0"},
		},
		{
			name:      "no lines",
			catalogue: catalogue(mug),
			want:      stock.Decision{Reason: stock.ReasonUnknownSKU, Detail: "the order has no lines"},
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
	d := stock.Decide("o-1", []stock.Line{{SKU: "MUG", Quantity: 2}, {SKU: "TEE", Quantity: 1}}, cat)
	r := d.Reservation("o-1", "tp", now)
	if r.Status != stock.StatusReserved || r.TotalCents != 4598 || r.Currency != "USD" || len(r.Lines) != 2 {
		t.Fatalf("reservation = %+v", r)
	}
	rej := stock.Decide("o-2", []stock.Line{{SKU: "X", Quantity: 1}}, cat)
	rr := rej.Reservation("o-2", "tp", now)
	if rr.Status != stock.StatusRejected || rr.Reason != stock.ReasonUnknownSKU || rr.SKU != "X" || len(rr.Lines) != 0 {
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

func TestResolveSettlesTheMarksOfFinalOrders(t *testing.T) {
	t.Parallel()
	// 10 units: 1 available, 6 reserved under reserve marks (a..f), 3 sold
	// (two by the earlier version, whose commit mark g is still on it, one
	// before any mark).
	it := stock.Item{SKU: "MUG", Available: 1, Reserved: 6, Sold: 3, Marks: map[string]stock.Mark{
		"a": {Op: stock.OpReserve, Qty: 1}, // committed: sold
		"b": {Op: stock.OpReserve, Qty: 1}, // released: available
		"c": {Op: stock.OpReserve, Qty: 1}, // rejected (a dead attempt's): available
		"d": {Op: stock.OpReserve, Qty: 1}, // void (a dead attempt's): available
		"e": {Op: stock.OpReserve, Qty: 1}, // reserved: not final, stays
		"f": {Op: stock.OpReserve, Qty: 1}, // not known: stays
		"g": {Op: stock.OpCommit, Qty: 2},  // the earlier version's, committed: goes, units already sold
		"h": {Op: stock.OpRelease, Qty: 1}, // the earlier version's, still releasing: stays
	}}
	statuses := map[string]stock.Status{
		"a": stock.StatusCommitted, "b": stock.StatusReleased, "c": stock.StatusRejected, "d": stock.StatusVoid,
		"e": stock.StatusReserved, "g": stock.StatusCommitted, "h": stock.StatusReleasing, "z": stock.StatusCommitted,
	}
	got, changed, err := it.Resolve(statuses)
	if err != nil || !changed {
		t.Fatalf("Resolve = %v, %v", changed, err)
	}
	want := stock.Item{SKU: "MUG", Available: 4, Reserved: 2, Sold: 4, Marks: map[string]stock.Mark{
		"e": {Op: stock.OpReserve, Qty: 1}, "f": {Op: stock.OpReserve, Qty: 1}, "h": {Op: stock.OpRelease, Qty: 1},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Resolve = %+v, want %+v", got, want)
	}
	if got.Total() != it.Total() {
		t.Fatalf("total %d, want %d conserved", got.Total(), it.Total())
	}
	if len(it.Marks) != 8 || it.Reserved != 6 {
		t.Fatal("Resolve changed its input")
	}
	// A mark is resolved once: it goes with its units.
	again, changed, err := got.Resolve(statuses)
	if err != nil || changed || !reflect.DeepEqual(again, got) {
		t.Fatalf("second Resolve = %+v, %v, %v; want nothing to do", again, changed, err)
	}
	last, _, err := got.Resolve(map[string]stock.Status{"e": stock.StatusCommitted, "f": stock.StatusReleased, "h": stock.StatusReleased})
	if err != nil || last.Marks != nil || last.Available != 5 || last.Reserved != 0 || last.Sold != 5 {
		t.Fatalf("Resolve of every mark = %+v, %v; want no marks (nil, omitted from JSON), 5 available, 5 sold", last, err)
	}
	// A reserve mark whose units are not reserved is a breach: nothing moves.
	broken := stock.Item{SKU: "MUG", Available: 3, Marks: map[string]stock.Mark{"o-9": {Op: stock.OpReserve, Qty: 2}}}
	if out, changed, err := broken.Resolve(map[string]stock.Status{"o-9": stock.StatusCommitted}); !errors.Is(err, stock.ErrInvariant) || changed || !reflect.DeepEqual(out, broken) {
		t.Fatalf("Resolve of a mark without units = %+v, %v, %v; want ErrInvariant and the item unchanged", out, changed, err)
	}
}

func TestReservationSettle(t *testing.T) {
	t.Parallel()
	lines := []stock.PricedLine{{SKU: "MUG", Quantity: 2, UnitPriceCents: 1, LineTotalCents: 2}}
	keeps := stock.Reservation{OrderID: "o-1", Status: stock.StatusReserved, Lines: lines, KeepsMarks: true}
	earlier := stock.Reservation{OrderID: "o-1", Status: stock.StatusReserved, Lines: lines}
	tests := []struct {
		name    string
		from    stock.Reservation
		to      stock.Status
		wantErr error
	}{
		{name: "commit", from: keeps, to: stock.StatusCommitted},
		{name: "release", from: keeps, to: stock.StatusReleased},
		{name: "a record of the earlier version is claimed instead", from: earlier, to: stock.StatusCommitted, wantErr: stock.ErrInvalidTransition},
		{name: "commit a released order", from: stock.Reservation{OrderID: "o-1", Status: stock.StatusReleased, KeepsMarks: true}, to: stock.StatusCommitted, wantErr: stock.ErrInvalidTransition},
		{name: "release a committed order", from: stock.Reservation{OrderID: "o-1", Status: stock.StatusCommitted, KeepsMarks: true}, to: stock.StatusReleased, wantErr: stock.ErrInvalidTransition},
		{name: "settle to a claim", from: keeps, to: stock.StatusCommitting, wantErr: stock.ErrInvalidTransition},
		{name: "settle to void", from: keeps, to: stock.StatusVoid, wantErr: stock.ErrInvalidTransition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.from.Settle(tt.to, now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Status != tt.to || !got.Status.Final() || !got.KeepsMarks || !reflect.DeepEqual(got.Lines, lines) {
				t.Fatalf("Settle = %+v, %v; want %s with its lines", got, err, tt.to)
			}
		})
	}
}

func TestDecisionKeepsMarks(t *testing.T) {
	t.Parallel()
	accepted := stock.Decide("o-1", []stock.Line{{SKU: "MUG", Quantity: 1}}, catalogue(mug)).Reservation("o-1", "", now)
	if accepted.Status != stock.StatusReserved || !accepted.KeepsMarks {
		t.Fatalf("accepted = %+v, want reserved and keeping its marks", accepted)
	}
	rejected := stock.Decide("o-2", []stock.Line{{SKU: "MUG", Quantity: 9}}, catalogue(mug)).Reservation("o-2", "", now)
	if rejected.Status != stock.StatusRejected || rejected.KeepsMarks {
		t.Fatalf("rejected = %+v", rejected)
	}
}

func TestReservationClaimAndFinish(t *testing.T) {
	t.Parallel()
	reserved := stock.Reservation{OrderID: "o-1", Status: stock.StatusReserved,
		Lines: []stock.PricedLine{{SKU: "MUG", Quantity: 2, UnitPriceCents: 1, LineTotalCents: 2}}}
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
			if want := []stock.Line{{SKU: "MUG", Quantity: 2}}; !reflect.DeepEqual(done.Items(), want) {
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
