package kvstore

import (
	"bytes"
	"context"
	"errors"
)

// Modify reads key, lets change edit its value, and stores the result by
// compare-and-set on the revision read: an update, or a create when the key
// has no value (change then gets T's zero value and revision 0). A
// compare-and-set that loses starts over from a fresh read, within the
// Repo's retry policy (WithRetry); after the last attempt the error wraps
// ErrConflict. It returns the value stored and its revision.
//
// change may run more than once, each time on a fresh value, so it must
// decide on what it is given alone. If it leaves an existing value as it
// was, nothing is written and the value read is returned. An error from
// change is returned as it is, and nothing is written.
func (r *Repo[T]) Modify(ctx context.Context, key string, change func(v *T, rev uint64) error) (T, uint64, error) {
	return r.modify(ctx, key, nil, 0, change)
}

// ModifyFrom is Modify whose first attempt starts from v, which the caller
// read (or wrote) at revision rev, without reading it again: a caller that
// has just had the value saves a read. A stale v loses its
// compare-and-set, and the next attempt reads.
func (r *Repo[T]) ModifyFrom(ctx context.Context, key string, v T, rev uint64, change func(v *T, rev uint64) error) (T, uint64, error) {
	return r.modify(ctx, key, &v, rev, change)
}

func (r *Repo[T]) modify(ctx context.Context, key string, from *T, fromRev uint64, change func(v *T, rev uint64) error) (out T, outRev uint64, err error) {
	p := r.o.retry
	p.Conflict = ErrConflict
	err = Retry(ctx, p, func(ctx context.Context) error {
		var (
			v   T
			rev uint64
		)
		if from != nil {
			v, rev, from = *from, fromRev, nil
		} else {
			var err error
			v, rev, err = r.Get(ctx, key)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		var before []byte // what change leaves alone is not written again
		if rev != 0 {
			var err error
			if before, err = r.encode(key, v); err != nil {
				return err
			}
		}
		if err := change(&v, rev); err != nil {
			return err
		}
		after, err := r.encode(key, v)
		if err != nil {
			return err
		}
		switch {
		case rev == 0:
			rev, err = r.create(ctx, key, after)
		case !bytes.Equal(before, after):
			rev, err = r.update(ctx, key, after, rev)
		}
		if err != nil {
			return err
		}
		out, outRev = v, rev
		return nil
	})
	return out, outRev, err
}
