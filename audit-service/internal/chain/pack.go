package chain

import "time"

// Packed is a block ready to store: its entries chained on the head it
// was packed on, sealed, and encoded.
type Packed struct {
	Block Block
	// Data is the block's stored form (EncodeBlock).
	Data []byte
	// Seqs is the block's HeaderSeqs header.
	Seqs string
	// Recs are the indexes, in the records packed, of the block's
	// entries, in chain order.
	Recs []int
}

// Pack chains recs on head, recorded at now, and groups the entries into
// blocks of at most maxBytes each (a single entry larger than that is a
// block of its own). A record that cannot make an entry fails alone, with
// errs[i] set, and nothing links to it; errs is nil when every record
// makes an entry.
func Pack(head Head, recs []Record, now time.Time, maxBytes int) (blocks []Packed, errs []error) {
	type building struct {
		entries []Entry
		encoded [][]byte
		size    int // bytes of the encoded entries
		recs    []int
	}
	var all []*building
	cur := &building{}
	prev := head
	for i, rec := range recs {
		e, err := Next(prev, rec, now)
		var raw []byte
		if err == nil {
			raw, err = Encode(e)
		}
		if err != nil {
			if errs == nil {
				errs = make([]error, len(recs))
			}
			errs[i] = err
			continue
		}
		if len(cur.entries) > 0 && BlockSize(len(cur.entries)+1, cur.size+len(raw)) > maxBytes {
			all = append(all, cur)
			cur = &building{}
		}
		cur.entries = append(cur.entries, e)
		cur.encoded = append(cur.encoded, raw)
		cur.size += len(raw)
		cur.recs = append(cur.recs, i)
		prev = Head{Index: e.Index, Hash: e.Hash}
	}
	if len(cur.entries) > 0 {
		all = append(all, cur)
	}
	blocks = make([]Packed, len(all))
	for i, b := range all {
		blk := Seal(b.entries, now)
		blocks[i] = Packed{Block: blk, Data: EncodeBlock(blk, b.encoded), Seqs: SeqsOf(b.entries).String(), Recs: b.recs}
	}
	return blocks, errs
}
