// Package upgrade replaces every instance of chosen services of a running
// system with a new binary, one instance at a time with a pause between,
// as a Kubernetes rolling update with maxUnavailable=1 does, and records
// each step: loadgen -upgrade-from runs it while load flows
// (docs/releasing.md, "Rolling upgrade test").
package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/eventshop/tools/stack"
)

// DefaultOrder upgrades the consumers of the changed events first and
// their producer last (docs/releasing.md, rule 3: a consumer must know a
// schema version before any producer emits it).
var DefaultOrder = []string{"audit-service", "notification-service", "payment-service", "inventory-service", "order-service"}

// ErrInvalidConfig marks an upgrade that cannot run.
var ErrInvalidConfig = errors.New("invalid upgrade")

// ParseOrder parses a comma-separated list of services (the programs of
// stack.Specs but the gateway simulator), each named once.
func ParseOrder(s string) ([]string, error) {
	var services []string
	for _, spec := range stack.Specs {
		if spec.Name != "payment-gateway" {
			services = append(services, spec.Name)
		}
	}
	var out []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
			return nil, fmt.Errorf("%w: order %q names an empty service", ErrInvalidConfig, s)
		case !slices.Contains(services, name):
			return nil, fmt.Errorf("%w: order names %q, not one of %s", ErrInvalidConfig, name, strings.Join(services, ", "))
		case slices.Contains(out, name):
			return nil, fmt.Errorf("%w: order names %s twice", ErrInvalidConfig, name)
		}
		out = append(out, name)
	}
	return out, nil
}

// Plan returns the instances to replace, in turn: every instance of each
// service of order, service by service (named as stack.InstanceName).
func Plan(order []string, instances int) []string {
	var out []string
	for _, svc := range order {
		for k := 1; k <= instances; k++ {
			out = append(out, stack.InstanceName(svc, k))
		}
	}
	return out
}

// System is the running system an upgrade acts on (stack.Local).
type System interface {
	// Replace stops the named instance gracefully, starts bin in its
	// place, and waits until it is ready or ctx ends.
	Replace(ctx context.Context, name, bin string) error
	// Stale returns the processes that do not run the new build.
	Stale() ([]string, error)
}

// Config says what to upgrade and how.
type Config struct {
	From      string            // what runs before, for the log: the old revision as given
	Order     []string          // services, in the order they are upgraded
	Instances int               // instances of each service (at least 2: one serves while the other is replaced)
	Bins      map[string]string // the new binary of each service of Order
	// Span spreads the replacements: the i-th of n is due Span*i/n after
	// Run starts (the last one at Span), each at least a short pause after
	// the one before.
	Span time.Duration
	// Ready bounds each replacement (the old instance's shutdown, the new
	// one's start until ready); 0 means 90s.
	Ready time.Duration
}

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	if c.Instances < 2 {
		return fmt.Errorf("%w: %d instance(s) of each service; a rolling upgrade needs at least 2, one serving while the other is replaced", ErrInvalidConfig, c.Instances)
	}
	if len(c.Order) == 0 {
		return fmt.Errorf("%w: no service to upgrade", ErrInvalidConfig)
	}
	for _, svc := range c.Order {
		if c.Bins[svc] == "" {
			return fmt.Errorf("%w: no new binary for %s", ErrInvalidConfig, svc)
		}
	}
	if c.Span < 0 || c.Ready < 0 {
		return fmt.Errorf("%w: negative span or ready timeout", ErrInvalidConfig)
	}
	return nil
}

// pause is the least time between two replacements: the new instance
// takes work before the next old one goes, even when the upgrade is
// behind its schedule.
const pause = 500 * time.Millisecond

// Step is one replacement.
type Step struct {
	Time     time.Time     `json:"time"`
	Offset   time.Duration `json:"offset_ns"` // since the upgrade began
	Instance string        `json:"instance"`
	Took     time.Duration `json:"took_ns"` // from SIGTERM until the new instance was ready
	Err      string        `json:"error,omitempty"`
}

// Rolling is one rolling upgrade of a running system.
type Rolling struct {
	cfg     Config
	sys     System
	out     io.Writer
	plan    []string
	service map[string]string // instance -> service

	mu      sync.Mutex
	steps   []Step
	stale   []string
	checked bool
}

// New returns an upgrade of sys as cfg says, logging each step to out.
func New(cfg Config, sys System, out io.Writer) (*Rolling, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Ready == 0 {
		cfg.Ready = 90 * time.Second
	}
	r := &Rolling{cfg: cfg, sys: sys, out: out, plan: Plan(cfg.Order, cfg.Instances), service: map[string]string{}}
	for _, svc := range cfg.Order {
		for k := 1; k <= cfg.Instances; k++ {
			r.service[stack.InstanceName(svc, k)] = svc
		}
	}
	return r, nil
}

// Run replaces every instance of the plan in turn (Config.Span). It
// returns when each was replaced, successfully or not, or when ctx ends
// (the rest are then left as they are). It does not stop with the load:
// give it the run's context, and loadgen waits for it before the checks
// (loadgen.Config.Disturb), so they see the system fully upgraded.
func (r *Rolling) Run(ctx context.Context) {
	start := time.Now()
	n := len(r.plan)
	fmt.Fprintf(r.out, "upgrade: %s → new, %d instances one at a time over %s: %s\n",
		r.cfg.From, n, r.cfg.Span, strings.Join(r.plan, ", "))
	for i, inst := range r.plan {
		due := start.Add(r.cfg.Span * time.Duration(i+1) / time.Duration(n))
		select {
		case <-ctx.Done():
			fmt.Fprintf(r.out, "upgrade: stopped (%v): %d of %d instances not replaced\n", ctx.Err(), n-i, n)
			return
		case <-time.After(max(time.Until(due), pause)):
		}
		rctx, cancel := context.WithTimeout(ctx, r.cfg.Ready)
		t0 := time.Now()
		err := r.sys.Replace(rctx, inst, r.cfg.Bins[r.service[inst]])
		cancel()
		s := Step{Time: t0, Offset: t0.Sub(start), Instance: inst, Took: time.Since(t0)}
		if err != nil {
			s.Err = err.Error()
		}
		r.mu.Lock()
		r.steps = append(r.steps, s)
		r.mu.Unlock()
		fmt.Fprintf(r.out, "upgrade: %s\n", s.line(r.cfg.From))
	}
	fmt.Fprintf(r.out, "upgrade: done in %s\n", time.Since(start).Round(100*time.Millisecond))
}

// line renders a step from the build from for a terminal.
func (s Step) line(from string) string {
	out := fmt.Sprintf("%s +%6.2fs %s old (%s) → new (ready %.1fs after SIGTERM)",
		s.Time.Format("15:04:05.000"), s.Offset.Seconds(), s.Instance, from, s.Took.Seconds())
	if s.Err != "" {
		out += ": ERROR " + s.Err
	}
	return out
}

// Check returns what went wrong: every failed step, every instance of the
// plan not replaced, and every process not running the new build at the
// end (Summary then reports them).
func (r *Rolling) Check() []string {
	r.mu.Lock()
	steps := slices.Clone(r.steps)
	r.mu.Unlock()
	var out []string
	for _, s := range steps {
		if s.Err != "" {
			out = append(out, fmt.Sprintf("upgrade: replacing %s failed: %s", s.Instance, s.Err))
		}
	}
	if len(steps) < len(r.plan) {
		out = append(out, fmt.Sprintf("upgrade: %d of %d instances were not replaced", len(r.plan)-len(steps), len(r.plan)))
	}
	stale, err := r.sys.Stale()
	if err != nil {
		return append(out, fmt.Sprintf("upgrade: which binaries run: %v", err))
	}
	r.mu.Lock()
	r.stale, r.checked = stale, true
	r.mu.Unlock()
	if len(stale) > 0 {
		out = append(out, fmt.Sprintf("upgrade: not running the new build at the end: %s", strings.Join(stale, ", ")))
	}
	return out
}

// Summary is what an upgrade did.
type Summary struct {
	From    string   `json:"from"`
	Order   []string `json:"order"`
	Planned int      `json:"planned"`
	Steps   []Step   `json:"steps"`
	Errors  int      `json:"errors"`
	// Stale lists the processes not running the new build when Check
	// looked (Checked); empty: every process ran it.
	Stale   []string `json:"stale,omitempty"`
	Checked bool     `json:"checked"`
}

// Summary returns what the upgrade did so far.
func (r *Rolling) Summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Summary{From: r.cfg.From, Order: slices.Clone(r.cfg.Order), Planned: len(r.plan), Steps: slices.Clone(r.steps),
		Stale: slices.Clone(r.stale), Checked: r.checked}
	for _, st := range r.steps {
		if st.Err != "" {
			s.Errors++
		}
	}
	return s
}

// Text renders the summary for a terminal.
func (s Summary) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "upgrade: from %s, %d of %d instances replaced (%s), %d failed\n",
		s.From, len(s.Steps), s.Planned, strings.Join(s.Order, " → "), s.Errors)
	for _, st := range s.Steps {
		b.WriteString("  " + st.line(s.From) + "\n")
	}
	switch {
	case !s.Checked:
	case len(s.Stale) == 0:
		b.WriteString("upgrade: every process runs the new build at the end\n")
	default:
		fmt.Fprintf(&b, "upgrade: not running the new build at the end: %s\n", strings.Join(s.Stale, ", "))
	}
	return b.String()
}
