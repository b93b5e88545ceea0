package loadgen

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/eventshop/tools/chaos"
	"github.com/eventshop/tools/upgrade"
)

// Latencies collects durations and reports percentiles exactly (the runs
// are at most a few hundred thousand orders, so sorting is cheap).
type Latencies struct{ d []time.Duration }

// Add records one duration.
func (l *Latencies) Add(d time.Duration) { l.d = append(l.d, d) }

// Len returns the number of recorded durations.
func (l *Latencies) Len() int { return len(l.d) }

// Percentile returns the p-th percentile (0 < p <= 100), nearest rank.
func (l *Latencies) Percentile(p float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	rank := int(math.Ceil(p / 100 * float64(len(l.d))))
	rank = min(max(rank, 1), len(l.d))
	return l.d[rank-1]
}

// Summary is the latency part of a report, in milliseconds.
type Summary struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

// Summarize returns the percentiles of l.
func (l *Latencies) Summarize() Summary {
	ms := func(d time.Duration) float64 { return math.Round(float64(d.Microseconds())) / 1000 }
	return Summary{
		Count: l.Len(),
		P50:   ms(l.Percentile(50)),
		P90:   ms(l.Percentile(90)),
		P99:   ms(l.Percentile(99)),
		P999:  ms(l.Percentile(99.9)),
		Max:   ms(l.Percentile(100)),
	}
}

// Report is what a run measured.
type Report struct {
	Mode            string         `json:"mode"`
	Concurrency     int            `json:"concurrency,omitempty"`
	TargetRate      float64        `json:"target_rate_per_s,omitempty"`
	DurationSeconds float64        `json:"duration_s"`
	Accepted        int            `json:"accepted"`
	Rejected        int            `json:"rejected_http"`
	Retried         int            `json:"post_retried,omitempty"` // POSTs answered only after a retry with their Idempotency-Key
	Final           map[string]int `json:"final"`
	NotFinal        int            `json:"not_final"`
	FinalByPoll     int            `json:"final_by_poll,omitempty"` // final events missed, status polled: no latency sample
	Throughput      float64        `json:"final_orders_per_s"`
	ConfirmedPerS   float64        `json:"confirmed_per_s"`
	PostLatency     Summary        `json:"post_latency"`
	EndToEnd        Summary        `json:"post_to_final_latency"`
	Violations      []string       `json:"violations,omitempty"`
	Chaos           *chaos.Summary `json:"chaos,omitempty"`
	// Upgrade and AuditVersions are what a rolling upgrade did and the
	// schema versions the audit trail holds after it (-upgrade-from).
	Upgrade       *upgrade.Summary `json:"upgrade,omitempty"`
	AuditVersions Versions         `json:"audit_versions,omitempty"`
}

// Text renders the report for a terminal.
func (r Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mode %s", r.Mode)
	if r.Mode == "closed" {
		fmt.Fprintf(&b, " (%d in flight)", r.Concurrency)
	} else {
		fmt.Fprintf(&b, " (%.0f orders/s offered)", r.TargetRate)
	}
	fmt.Fprintf(&b, ", %.1fs\n", r.DurationSeconds)
	fmt.Fprintf(&b, "accepted %d, refused %d, final %v, not final %d\n", r.Accepted, r.Rejected, r.Final, r.NotFinal)
	if r.Retried > 0 {
		fmt.Fprintf(&b, "%d POSTs answered only when retried with their Idempotency-Key (no answer or a 5xx first)\n", r.Retried)
	}
	if r.FinalByPoll > 0 {
		fmt.Fprintf(&b, "%d final events missed while reconnecting (status polled; not in the latencies)\n", r.FinalByPoll)
	}
	fmt.Fprintf(&b, "throughput %.1f final orders/s (%.1f confirmed/s)\n", r.Throughput, r.ConfirmedPerS)
	s := r.PostLatency
	fmt.Fprintf(&b, "POST latency      ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", s.P50, s.P90, s.P99, s.P999, s.Max)
	s = r.EndToEnd
	fmt.Fprintf(&b, "POST->final       ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  (n=%d)\n", s.P50, s.P90, s.P99, s.P999, s.Max, s.Count)
	if r.Chaos != nil {
		b.WriteString(r.Chaos.Text())
	}
	if r.Upgrade != nil {
		b.WriteString(r.Upgrade.Text())
	}
	b.WriteString(r.AuditVersions.Text())
	if len(r.Violations) == 0 {
		b.WriteString("invariants: ok\n")
	} else {
		fmt.Fprintf(&b, "invariants: %d VIOLATIONS\n", len(r.Violations))
		for _, v := range r.Violations {
			b.WriteString("  - " + v + "\n")
		}
	}
	return b.String()
}
