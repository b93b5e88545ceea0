package reservation

import (
	"context"
	"errors"
	"fmt"
	"time"

	oteltrace "go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/eventshop/inventory-service/internal/stock"
	"github.com/eventshop/shared/platform/tracing"
)

// itemKeyPrefix is the store's key prefix of an item: the cache-hit event
// names the key the store's spans would have named.
const itemKeyPrefix = "stock."

// View returns the item of sku as its orders' decisions make it: the
// reserve marks of final orders resolved (a committed order's units sold,
// a released one's available; stock.Item.Resolve), looking up every record
// of a reserve mark this process does not know final. The revision is the
// stored version's: the view may be written at it (WriteItem; resolving is
// what any write of the item does).
func (p *Protocol) View(ctx context.Context, sku string) (stock.Item, uint64, error) {
	it, rev, err := p.store.Item(ctx, sku)
	if err != nil {
		return it, rev, err
	}
	it, err = p.resolve(ctx, it)
	return it, rev, err
}

// Items returns every catalogue item as View shows it, sorted by SKU.
func (p *Protocol) Items(ctx context.Context) ([]stock.Item, error) {
	items, err := p.store.Items(ctx)
	if err != nil {
		return nil, err
	}
	for i, it := range items {
		if items[i], err = p.resolve(ctx, it); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// resolve resolves every mark of it whose order is final, looking up the
// records of reserve marks this process does not know.
func (p *Protocol) resolve(ctx context.Context, it stock.Item) (stock.Item, error) {
	statuses := p.known.of(it)
	for id, m := range it.Marks {
		if _, ok := statuses[id]; ok || m.Op != stock.OpReserve {
			continue
		}
		r, _, err := p.store.Reservation(ctx, id)
		if errors.Is(err, stock.ErrNoReservation) {
			continue // an attempt in flight: its units are reserved
		}
		if err != nil {
			return it, fmt.Errorf("sku %s: %w", it.SKU, err)
		}
		if r.Status.Final() {
			p.known.remember(id, r.Status)
			if statuses == nil {
				statuses = map[string]stock.Status{}
			}
			statuses[id] = r.Status
		}
	}
	out, _, err := it.Resolve(statuses)
	return out, err
}

// WriteItem writes it, read at revision rev, with a compare-and-set; it
// fails with stock.ErrConflict if the item changed since.
//
// The write also resolves the marks of the orders this process knows final:
// a committed order's reserved units become sold with the next write of
// the item, whoever makes it.
func (p *Protocol) WriteItem(ctx context.Context, it stock.Item, rev uint64) (uint64, error) {
	it, _, err := it.Resolve(p.known.of(it))
	if err != nil {
		return 0, fmt.Errorf("update sku %s: %w", it.SKU, err)
	}
	n, err := p.store.UpdateItem(ctx, it, rev)
	if err != nil {
		p.cache.forget(it.SKU)
		return 0, err
	}
	p.cache.put(it, n)
	return n, nil
}

// cached returns the item as this process last saw it, reading it only
// when it is not cached. Use it only to build compare-and-set writes.
func (p *Protocol) cached(ctx context.Context, sku string) (stock.Item, uint64, error) {
	if e, ok := p.cache.get(sku); ok {
		// No read: say so on the caller's span, whose next write is
		// built on this guess.
		if span := oteltrace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent("item cache hit", oteltrace.WithAttributes(tracing.AttrKVKey.String(itemKeyPrefix+sku),
				tracing.AttrKVRevision.Int64(int64(e.rev))))
		}
		return e.item, e.rev, nil
	}
	it, rev, err := p.store.Item(ctx, sku)
	if err != nil {
		return it, rev, err
	}
	p.cache.put(it, rev)
	return it, rev, nil
}

// items reads the items of skus (from the cache where it has them) with
// their revisions; unknown SKUs are left out for Decide to reject.
func (p *Protocol) items(ctx context.Context, skus []string) (map[string]stock.Item, map[string]uint64, error) {
	catalogue := make(map[string]stock.Item, len(skus))
	revs := make(map[string]uint64, len(skus))
	for _, sku := range skus {
		it, rev, err := p.cached(ctx, sku)
		if errors.Is(err, stock.ErrUnknownSKU) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		catalogue[sku], revs[sku] = it, rev
	}
	return catalogue, revs, nil
}

// applyLines makes op of orderID on the SKU of every line not marked with
// it yet (an earlier attempt made those), each a compare-and-set from the
// version in catalogue, read at revs.
func (p *Protocol) applyLines(ctx context.Context, orderID string, op stock.Op, lines []stock.Line,
	catalogue map[string]stock.Item, revs map[string]uint64, now time.Time) error {
	for _, l := range lines {
		it, ok := catalogue[l.SKU]
		if !ok {
			return fmt.Errorf("order %s: sku %s is gone: %w", orderID, l.SKU, stock.ErrInvariant)
		}
		if it.Marked(orderID, op) {
			continue
		}
		p.tidy(ctx, it)
		next, err := it.Apply(orderID, op, l.Quantity, now)
		if err != nil {
			return p.recheck(ctx, l.SKU, revs[l.SKU], err)
		}
		if _, err := p.WriteItem(ctx, next, revs[l.SKU]); err != nil {
			return err
		}
	}
	return nil
}

// recheck decides whether err, an invariant breach found on the version of
// sku read at rev, is real. That version may be a cached one that another
// writer has moved on from (a reservation another instance wrote is not in
// this process's cache): then err is only a conflict, and the retry reads
// afresh. Only a breach on the current version goes to the dead letters.
func (p *Protocol) recheck(ctx context.Context, sku string, rev uint64, err error) error {
	if !errors.Is(err, stock.ErrInvariant) {
		return err
	}
	p.cache.forget(sku)
	_, cur, rerr := p.cached(ctx, sku)
	if rerr != nil {
		return rerr
	}
	if cur != rev {
		return fmt.Errorf("%w: sku %s moved on from revision %d (%v)", stock.ErrConflict, sku, rev, err)
	}
	return err
}

// tidy lets a write of it resolve the marks of orders that ended without
// this process knowing (another instance committed them, a process died
// before finishing a release, an attempt whose redelivery never came left
// units reserved for an order rejected or void): a mark older than
// staleAfter, of an order this process does not know final, has its record
// looked up, and a final status is remembered, which the write resolves.
// An order found undecided is not looked up again for staleAfter; nothing
// is, when a record cannot be read (the next write tries again).
func (p *Protocol) tidy(ctx context.Context, it stock.Item) {
	now := p.now()
	looked := 0
	for id, m := range it.Marks {
		if looked == maxTidyLookups {
			return
		}
		if now.Sub(m.At) < p.staleAfter {
			continue
		}
		if _, ok := p.known.get(id); ok || !p.undecided.due(id, now) {
			continue
		}
		looked++
		r, _, err := p.store.Reservation(ctx, id)
		if err != nil && !errors.Is(err, stock.ErrNoReservation) {
			continue
		}
		if err != nil || !r.Status.Final() {
			p.undecided.wait(id, now, p.staleAfter)
			continue
		}
		if _, _, err := it.Resolve(map[string]stock.Status{id: r.Status}); err != nil {
			p.log.Error("stale mark cannot be resolved", zap.String("sku", it.SKU), zap.String("order_id", id), zap.Error(err))
			continue
		}
		if m.Op == stock.OpReserve && r.Status != stock.StatusCommitted {
			p.log.Warn("units of a stale reservation given back", zap.String("sku", it.SKU), zap.String("order_id", id),
				zap.Int64("qty", m.Qty), zap.String("status", string(r.Status)))
		}
		p.known.remember(id, r.Status)
	}
}
