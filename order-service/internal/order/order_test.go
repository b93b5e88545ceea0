package order_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/eventshop/order-service/internal/order"
)

var (
	t0  = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	t1  = t0.Add(time.Minute)
	one = []order.Line{{SKU: "SKU-1", Name: "Mug", Quantity: 2, UnitPriceCents: 1299, LineTotalCents: 2598}}
)

func pending(t *testing.T) order.Order {
	t.Helper()
	o, err := order.New(order.Draft{ID: "o-1", CustomerID: "c-1", Items: []order.Item{{SKU: "SKU-1", Quantity: 2}}, CreatedAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func with(o order.Order, f func(*order.Order)) order.Order { f(&o); return o }

func reserved(t *testing.T) order.Order {
	return with(pending(t), func(o *order.Order) {
		o.Status, o.Lines, o.TotalCents, o.Currency = order.StatusReserved, one, 2598, "USD"
	})
}

func confirmed(t *testing.T) order.Order {
	return with(reserved(t), func(o *order.Order) { o.Status, o.ChargeID = order.StatusConfirmed, "ch-1" })
}

func cancelled(t *testing.T) order.Order {
	return with(pending(t), func(o *order.Order) {
		o.Status, o.CancelReason, o.CancelDetail = order.StatusCancelled, order.ReasonInsufficientStock, "SKU-1"
	})
}

func TestNew(t *testing.T) {
	t.Parallel()
	items := []order.Item{{SKU: "S", Quantity: 1}}
	tests := []struct {
		name    string
		draft   order.Draft
		wantErr error
	}{
		{name: "valid", draft: order.Draft{ID: "o", CustomerID: "c", Items: items, CreatedAt: t0}},
		{name: "no id", draft: order.Draft{CustomerID: "c", Items: items, CreatedAt: t0}, wantErr: order.ErrInvalidOrder},
		{name: "no customer", draft: order.Draft{ID: "o", Items: items, CreatedAt: t0}, wantErr: order.ErrInvalidOrder},
		{name: "no items", draft: order.Draft{ID: "o", CustomerID: "c", CreatedAt: t0}, wantErr: order.ErrInvalidOrder},
		{name: "zero quantity", draft: order.Draft{ID: "o", CustomerID: "c", Items: []order.Item{{SKU: "S"}}, CreatedAt: t0}, wantErr: order.ErrInvalidOrder},
		{name: "no time", draft: order.Draft{ID: "o", CustomerID: "c", Items: items}, wantErr: order.ErrInvalidOrder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := order.New(tt.draft)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (got.Status != order.StatusPending || !got.UpdatedAt.Equal(t0)) {
				t.Fatalf("New = %+v, want PENDING at %v", got, t0)
			}
		})
	}
}

func TestApplyReserved(t *testing.T) {
	t.Parallel()
	res := order.Reservation{OrderID: "o-1", Lines: one, TotalCents: 2598, Currency: "USD"}
	tests := []struct {
		name        string
		in          order.Order
		ev          order.Reservation
		want        order.Order
		wantChanged bool
		wantErr     error
	}{
		{name: "pending becomes reserved", in: pending(t), ev: res, wantChanged: true,
			want: with(reserved(t), func(o *order.Order) { o.UpdatedAt = t1 })},
		{name: "replay on reserved is a no-op", in: reserved(t), ev: res, want: reserved(t)},
		{name: "confirmed by payment first gets its lines", ev: res, wantChanged: true,
			in: with(pending(t), func(o *order.Order) {
				o.Status, o.ChargeID, o.TotalCents, o.Currency = order.StatusConfirmed, "ch-1", 2598, "USD"
			}),
			want: with(confirmed(t), func(o *order.Order) { o.UpdatedAt = t1 })},
		{name: "confirmed keeps the total it was charged", ev: with2(res, 1), wantChanged: true,
			in: with(pending(t), func(o *order.Order) {
				o.Status, o.ChargeID, o.TotalCents, o.Currency = order.StatusConfirmed, "ch-1", 2598, "USD"
			}),
			want: with(confirmed(t), func(o *order.Order) { o.UpdatedAt = t1 })},
		{name: "complete confirmed order is a no-op", in: confirmed(t), ev: res, want: confirmed(t)},
		{name: "cancelled by a decline first gets lines and total, stays cancelled", ev: res, wantChanged: true,
			in: with(pending(t), func(o *order.Order) {
				o.Status, o.CancelReason = order.StatusCancelled, order.ReasonPaymentDeclined
			}),
			want: with(reserved(t), func(o *order.Order) {
				o.Status, o.CancelReason, o.UpdatedAt = order.StatusCancelled, order.ReasonPaymentDeclined, t1
			})},
		{name: "another order's event", in: pending(t), ev: with3(res, "o-2"), want: pending(t), wantErr: order.ErrInvalidEvent},
		{name: "no lines", in: pending(t), ev: order.Reservation{OrderID: "o-1", Currency: "USD"}, want: pending(t), wantErr: order.ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, changed, err := order.ApplyReserved(tt.in, tt.ev, t1)
			check(t, got, changed, err, tt.want, tt.wantChanged, tt.wantErr)
		})
	}
}

// with2 returns r with a different total, to show a known total is kept.
func with2(r order.Reservation, total int64) order.Reservation { r.TotalCents = total; return r }

// with3 returns r about another order.
func with3(r order.Reservation, id string) order.Reservation { r.OrderID = id; return r }

func TestApplyRejected(t *testing.T) {
	t.Parallel()
	rej := order.Rejection{OrderID: "o-1", Reason: order.ReasonInsufficientStock, Detail: "SKU-1"}
	tests := []struct {
		name        string
		in          order.Order
		ev          order.Rejection
		want        order.Order
		wantChanged bool
		wantErr     error
	}{
		{name: "pending is cancelled with the reason", in: pending(t), ev: rej, wantChanged: true,
			want: with(cancelled(t), func(o *order.Order) { o.UpdatedAt = t1 })},
		{name: "sku becomes the detail when there is none", in: pending(t), wantChanged: true,
			ev: order.Rejection{OrderID: "o-1", Reason: order.ReasonUnknownSKU, SKU: "NOPE"},
			want: with(pending(t), func(o *order.Order) {
				o.Status, o.CancelReason, o.CancelDetail, o.UpdatedAt = order.StatusCancelled, order.ReasonUnknownSKU, "sku NOPE", t1
			})},
		{name: "replay on cancelled is a no-op", in: cancelled(t), ev: rej, want: cancelled(t)},
		{name: "timed out before a reservation is left alone", ev: rej,
			in:   with(pending(t), func(o *order.Order) { o.Status, o.CancelReason = order.StatusCancelled, order.ReasonTimeout }),
			want: with(pending(t), func(o *order.Order) { o.Status, o.CancelReason = order.StatusCancelled, order.ReasonTimeout })},
		{name: "confirmed cannot be rejected", in: confirmed(t), ev: rej, want: confirmed(t), wantErr: order.ErrInvalidTransition},
		{name: "reserved cannot be rejected", in: reserved(t), ev: rej, want: reserved(t), wantErr: order.ErrInvalidTransition},
		{name: "cancelled after its reservation cannot be rejected", ev: rej, wantErr: order.ErrInvalidTransition,
			in:   with(reserved(t), func(o *order.Order) { o.Status, o.CancelReason = order.StatusCancelled, order.ReasonTimeout }),
			want: with(reserved(t), func(o *order.Order) { o.Status, o.CancelReason = order.StatusCancelled, order.ReasonTimeout })},
		{name: "unknown reason", in: pending(t), ev: order.Rejection{OrderID: "o-1", Reason: "meh"}, want: pending(t), wantErr: order.ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, changed, err := order.ApplyRejected(tt.in, tt.ev, t1)
			check(t, got, changed, err, tt.want, tt.wantChanged, tt.wantErr)
		})
	}
}

func TestApplyPaymentSucceeded(t *testing.T) {
	t.Parallel()
	pay := order.Payment{OrderID: "o-1", ChargeID: "ch-1", AmountCents: 2598, Currency: "USD"}
	tests := []struct {
		name        string
		in          order.Order
		ev          order.Payment
		want        order.Order
		wantChanged bool
		wantErr     error
	}{
		{name: "reserved is confirmed", in: reserved(t), ev: pay, wantChanged: true,
			want: with(confirmed(t), func(o *order.Order) { o.UpdatedAt = t1 })},
		{name: "pending (never reserved) is refused", in: pending(t), ev: pay, want: pending(t), wantErr: order.ErrNotReserved},
		{name: "a cent for a 2598 order is refused", in: reserved(t), want: reserved(t), wantErr: order.ErrAmountMismatch,
			ev: order.Payment{OrderID: "o-1", ChargeID: "ch-1", AmountCents: 1, Currency: "USD"}},
		{name: "another currency is refused", in: reserved(t), want: reserved(t), wantErr: order.ErrAmountMismatch,
			ev: order.Payment{OrderID: "o-1", ChargeID: "ch-1", AmountCents: 2598, Currency: "EUR"}},
		{name: "replay on confirmed is a no-op", in: confirmed(t), ev: pay, want: confirmed(t)},
		{name: "another charge for a confirmed order is refused", in: confirmed(t), want: confirmed(t), wantErr: order.ErrInvalidTransition,
			ev: order.Payment{OrderID: "o-1", ChargeID: "ch-2", AmountCents: 2598, Currency: "USD"}},
		{name: "timed out after its reservation stays cancelled and asks for a refund", ev: pay, wantErr: order.ErrPaidAfterCancel,
			in:   with(reserved(t), func(o *order.Order) { o.Status, o.CancelReason = order.StatusCancelled, order.ReasonTimeout }),
			want: with(reserved(t), func(o *order.Order) { o.Status, o.CancelReason = order.StatusCancelled, order.ReasonTimeout })},
		{name: "rejected (never reserved) is refused", in: cancelled(t), ev: pay, want: cancelled(t), wantErr: order.ErrNotReserved},
		{name: "a success after a decline is refused", ev: pay, wantErr: order.ErrInvalidTransition,
			in:   with(reserved(t), func(o *order.Order) { o.Status, o.CancelReason = order.StatusCancelled, order.ReasonPaymentDeclined }),
			want: with(reserved(t), func(o *order.Order) { o.Status, o.CancelReason = order.StatusCancelled, order.ReasonPaymentDeclined })},
		{name: "no charge id", in: reserved(t), ev: order.Payment{OrderID: "o-1", Currency: "USD"}, want: reserved(t), wantErr: order.ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, changed, err := order.ApplyPaymentSucceeded(tt.in, tt.ev, t1)
			check(t, got, changed, err, tt.want, tt.wantChanged, tt.wantErr)
		})
	}
}

func TestApplyPaymentFailed(t *testing.T) {
	t.Parallel()
	dec := order.Decline{OrderID: "o-1", DeclineCode: "insufficient_funds", AmountCents: 2598, Currency: "USD"}
	declined := func(o order.Order) order.Order {
		o.Status, o.CancelReason, o.CancelDetail, o.UpdatedAt = order.StatusCancelled, order.ReasonPaymentDeclined, "insufficient_funds", t1
		return o
	}
	tests := []struct {
		name        string
		in          order.Order
		ev          order.Decline
		want        order.Order
		wantChanged bool
		wantErr     error
	}{
		{name: "reserved is cancelled", in: reserved(t), ev: dec, wantChanged: true, want: declined(reserved(t))},
		{name: "pending (never reserved) is refused", in: pending(t), ev: dec, want: pending(t), wantErr: order.ErrNotReserved},
		{name: "another amount is refused", in: reserved(t), want: reserved(t), wantErr: order.ErrAmountMismatch,
			ev: order.Decline{OrderID: "o-1", DeclineCode: "x", AmountCents: 1, Currency: "USD"}},
		{name: "timed out after its reservation is a no-op", ev: dec,
			in:   with(reserved(t), func(o *order.Order) { o.Status, o.CancelReason = order.StatusCancelled, order.ReasonTimeout }),
			want: with(reserved(t), func(o *order.Order) { o.Status, o.CancelReason = order.StatusCancelled, order.ReasonTimeout })},
		{name: "confirmed cannot be declined", in: confirmed(t), ev: dec, want: confirmed(t), wantErr: order.ErrInvalidTransition},
		{name: "another order's event", in: pending(t), ev: order.Decline{OrderID: "x"}, want: pending(t), wantErr: order.ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, changed, err := order.ApplyPaymentFailed(tt.in, tt.ev, t1)
			check(t, got, changed, err, tt.want, tt.wantChanged, tt.wantErr)
		})
	}
}

// TestOutcomeDoesNotDependOnArrivalOrder applies the events the saga can
// produce for one order, each up to twice, and checks the final state is
// the same. A payment outcome follows its reservation (the payment service
// charges a reservation, and the order reads it from its event before it
// applies the outcome), so only redeliveries reorder them.
func TestOutcomeDoesNotDependOnArrivalOrder(t *testing.T) {
	t.Parallel()
	reserve := func(o order.Order) (order.Order, bool, error) {
		return order.ApplyReserved(o, order.Reservation{OrderID: "o-1", Lines: one, TotalCents: 2598, Currency: "USD"}, t1)
	}
	pay := func(o order.Order) (order.Order, bool, error) {
		return order.ApplyPaymentSucceeded(o, order.Payment{OrderID: "o-1", ChargeID: "ch-1", AmountCents: 2598, Currency: "USD"}, t1)
	}
	decline := func(o order.Order) (order.Order, bool, error) {
		return order.ApplyPaymentFailed(o, order.Decline{OrderID: "o-1", DeclineCode: "card_declined", AmountCents: 2598, Currency: "USD"}, t1)
	}
	type step func(order.Order) (order.Order, bool, error)
	tests := []struct {
		name  string
		steps []step
		want  order.Status
	}{
		{name: "reserved then paid", steps: []step{reserve, pay}, want: order.StatusConfirmed},
		{name: "reserved then declined", steps: []step{reserve, decline}, want: order.StatusCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var results []order.Order
			for _, seq := range [][]step{
				{tt.steps[0], tt.steps[1]},
				{tt.steps[0], tt.steps[0], tt.steps[1], tt.steps[1]},
				{tt.steps[0], tt.steps[1], tt.steps[0], tt.steps[1]},
			} {
				o := pending(t)
				for _, s := range seq {
					var err error
					if o, _, err = s(o); err != nil {
						t.Fatalf("step: %v", err)
					}
				}
				results = append(results, o)
			}
			for i, got := range results {
				if got.Status != tt.want || got.TotalCents != 2598 || len(got.Lines) != 1 {
					t.Fatalf("sequence %d ended as %+v", i, got)
				}
				if !reflect.DeepEqual(got, results[0]) {
					t.Fatalf("sequence %d ended as %+v, sequence 0 as %+v", i, got, results[0])
				}
			}
		})
	}
}

func check(t *testing.T, got order.Order, changed bool, err error, want order.Order, wantChanged bool, wantErr error) {
	t.Helper()
	if !errors.Is(err, wantErr) {
		t.Fatalf("err = %v, want %v", err, wantErr)
	}
	if changed != wantChanged {
		t.Errorf("changed = %v, want %v", changed, wantChanged)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order =\n %+v\nwant\n %+v", got, want)
	}
}

func TestApplyDeadline(t *testing.T) {
	t.Parallel()
	const deadline = 2 * time.Minute
	due := t0.Add(deadline)
	timedOut := func(o order.Order, detail string) order.Order {
		o.Status, o.CancelReason, o.CancelDetail, o.UpdatedAt = order.StatusCancelled, order.ReasonTimeout, detail, due
		return o
	}
	tests := []struct {
		name        string
		in          order.Order
		now         time.Time
		want        order.Order
		wantChanged bool
		wantErr     error
	}{
		{name: "pending past its deadline is cancelled", in: pending(t), now: due, wantChanged: true,
			want: timedOut(pending(t), "no final outcome within 2m0s (was PENDING)")},
		{name: "reserved past its deadline is cancelled", in: reserved(t), now: due, wantChanged: true,
			want: timedOut(reserved(t), "no final outcome within 2m0s (was RESERVED)")},
		{name: "pending before its deadline is not due", in: pending(t), now: due.Add(-time.Nanosecond), want: pending(t), wantErr: order.ErrNotDue},
		{name: "confirmed is a no-op even when late", in: confirmed(t), now: due.Add(time.Hour), want: confirmed(t)},
		{name: "cancelled keeps its reason", in: cancelled(t), now: due.Add(time.Hour), want: cancelled(t)},
		{name: "confirmed before its deadline is a no-op", in: confirmed(t), now: t1, want: confirmed(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, changed, err := order.ApplyDeadline(tt.in, deadline, tt.now)
			check(t, got, changed, err, tt.want, tt.wantChanged, tt.wantErr)
		})
	}
}

// TestLateEventsAfterTimeout: whatever arrives after the deadline cancelled
// an order leaves it cancelled for timeout; a late payment says money must
// go back.
func TestLateEventsAfterTimeout(t *testing.T) {
	t.Parallel()
	late := t0.Add(time.Hour)
	o, _, err := order.ApplyDeadline(pending(t), time.Minute, late)
	if err != nil {
		t.Fatal(err)
	}
	o, _, err = order.ApplyReserved(o, order.Reservation{OrderID: "o-1", Lines: one, TotalCents: 2598, Currency: "USD"}, late)
	if err != nil || o.Status != order.StatusCancelled || o.CancelReason != order.ReasonTimeout || o.TotalCents != 2598 {
		t.Fatalf("late reservation: %+v, %v; want cancelled (timeout) with the lines filled in", o, err)
	}
	if _, changed, err := order.ApplyPaymentSucceeded(o, order.Payment{OrderID: "o-1", ChargeID: "ch", AmountCents: 2598, Currency: "USD"}, late); !errors.Is(err, order.ErrPaidAfterCancel) || changed {
		t.Fatalf("late payment: changed %v, err %v; want ErrPaidAfterCancel", changed, err)
	}
	// Inventory answers once: a rejection of the order it reserved is refused.
	if got, changed, err := order.ApplyRejected(o, order.Rejection{OrderID: "o-1", Reason: order.ReasonInsufficientStock}, late); !errors.Is(err, order.ErrInvalidTransition) || changed || got.CancelReason != order.ReasonTimeout {
		t.Fatalf("rejection after the reservation: %+v %v %v", got, changed, err)
	}
	// A late rejection of an order that timed out before any reservation
	// changes nothing.
	p, _, _ := order.ApplyDeadline(pending(t), time.Minute, late)
	if got, changed, err := order.ApplyRejected(p, order.Rejection{OrderID: "o-1", Reason: order.ReasonInsufficientStock}, late); err != nil || changed || got.CancelReason != order.ReasonTimeout {
		t.Fatalf("late rejection: %+v %v %v", got, changed, err)
	}
}

func TestApplyDecision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      order.Order
		d       order.Decision
		want    order.Order
		wantErr error
	}{
		{name: "confirmed", in: reserved(t), d: order.Decision{Status: order.StatusConfirmed, CustomerID: "c-1", TotalCents: 2598, Currency: "USD", At: t1},
			want: with(reserved(t), func(o *order.Order) { o.Status, o.UpdatedAt = order.StatusConfirmed, t1 })},
		{name: "cancelled keeps the reservation", in: reserved(t), d: order.Decision{Status: order.StatusCancelled, CustomerID: "c-1", Reason: order.ReasonTimeout, Detail: "late", At: t1},
			want: with(reserved(t), func(o *order.Order) {
				o.Status, o.CancelReason, o.CancelDetail, o.UpdatedAt = order.StatusCancelled, order.ReasonTimeout, "late", t1
			})},
		{name: "another customer", in: reserved(t), d: order.Decision{Status: order.StatusConfirmed, CustomerID: "c-2", At: t1}, wantErr: order.ErrInvalidEvent},
		{name: "not final", in: pending(t), d: order.Decision{Status: order.StatusReserved, CustomerID: "c-1", At: t1}, wantErr: order.ErrInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := order.ApplyDecision(tt.in, tt.d)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ApplyDecision = %+v, want %+v", got, tt.want)
			}
		})
	}
}
