package store_test

import (
	"context"
	"testing"
)

// Seen in a chaos run on a 3-node cluster with two audit instances: a copy
// of an order's created event (republished by the chaos tool) was audited
// first, while the original's delivery was held up in redelivery; an
// audit instance restarted meanwhile then received the original. It knew
// the copy's block only by its header, and audited the event a second
// time. The original is a duplicate of its audited copy.
func TestOriginalAuditedAfterItsCopyIsADuplicate(t *testing.T) {
	t.Parallel()
	d := newDomain(t)
	ctx := context.Background()
	original := d.saga(t, "o-copied")[0]
	cp := d.republish(t, original)
	a := newAppender(t, d.js)
	if _, dup, err := a.Append(ctx, cp); err != nil || dup {
		t.Fatalf("append the copy first: dup %v, %v", dup, err)
	}
	// Later blocks, so the copy's block is not the head a new appender
	// loads whole.
	for _, rec := range d.saga(t, "o-later") {
		if _, dup, err := a.Append(ctx, rec); err != nil || dup {
			t.Fatalf("append %s: dup %v, %v", rec.Type, dup, err)
		}
	}
	restarted := newAppender(t, d.js)
	if _, dup, err := restarted.Append(ctx, original); err != nil || !dup {
		t.Fatalf("the original after its audited copy, on a restarted appender: dup %v, %v; want a duplicate", dup, err)
	}
	if res := verify(t, d.js); !res.OK || res.Entries != 6 {
		t.Fatalf("verify = %+v, want a valid chain of 6 entries (the copy and five later events)", res)
	}
	// A copy whose original is not audited yet is still audited under the
	// original: a later copy counts only once a remembered block holds it.
	fresh := d.saga(t, "o-fresh")[0]
	freshCopy := d.republish(t, fresh)
	if _, dup, err := restarted.Append(ctx, fresh); err != nil || dup {
		t.Fatalf("an original whose copy is not audited: dup %v, %v; want it audited", dup, err)
	}
	if _, dup, err := restarted.Append(ctx, freshCopy); err != nil || !dup {
		t.Fatalf("the copy of an audited original: dup %v, %v; want a duplicate", dup, err)
	}
}
