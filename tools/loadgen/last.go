package loadgen

import "time"

// LastFinal returns when the last order of the run reached its final state
// (zero before any did): with a disturbance that ends at a known moment, the
// difference is how long the backlog took to drain.
func (r *Runner) LastFinal() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var last time.Time
	for _, f := range r.finals {
		if f.at.After(last) {
			last = f.at
		}
	}
	return last
}
