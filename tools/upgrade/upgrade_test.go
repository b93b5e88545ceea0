package upgrade

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr error
	}{
		{name: "the default", in: strings.Join(DefaultOrder, ","), want: DefaultOrder},
		{name: "one service, spaces trimmed", in: " order-service ", want: []string{"order-service"}},
		{name: "producer first", in: "order-service,audit-service", want: []string{"order-service", "audit-service"}},
		{name: "unknown", in: "audit-service,billing-service", wantErr: ErrInvalidConfig},
		{name: "the gateway simulator is no service", in: "payment-gateway", wantErr: ErrInvalidConfig},
		{name: "twice", in: "audit-service,audit-service", wantErr: ErrInvalidConfig},
		{name: "empty", in: "", wantErr: ErrInvalidConfig},
		{name: "empty element", in: "audit-service,,order-service", wantErr: ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseOrder(tt.in)
			if !errors.Is(err, tt.wantErr) || !slices.Equal(got, tt.want) {
				t.Fatalf("ParseOrder(%q) = %v, %v; want %v, %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	bins := map[string]string{"audit-service": "/new/audit-service", "order-service": "/new/order-service"}
	tests := []struct {
		name    string
		cfg     Config
		wantErr error
	}{
		{name: "ok", cfg: Config{Order: []string{"audit-service", "order-service"}, Instances: 2, Bins: bins}},
		{name: "one instance: nobody serves during the replacement", cfg: Config{Order: []string{"order-service"}, Instances: 1, Bins: bins}, wantErr: ErrInvalidConfig},
		{name: "no new binary", cfg: Config{Order: []string{"payment-service"}, Instances: 2, Bins: bins}, wantErr: ErrInvalidConfig},
		{name: "nothing to upgrade", cfg: Config{Instances: 2, Bins: bins}, wantErr: ErrInvalidConfig},
		{name: "negative span", cfg: Config{Order: []string{"order-service"}, Instances: 2, Bins: bins, Span: -time.Second}, wantErr: ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.cfg.Validate(); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate() = %v, want %v", err, tt.wantErr)
			}
			if _, err := New(tt.cfg, &system{}, &bytes.Buffer{}); !errors.Is(err, tt.wantErr) {
				t.Fatalf("New() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// system stands for stack.Local (tested on real processes in package
// stack): it records each replacement and which binary each instance runs.
type system struct {
	mu       sync.Mutex
	runs     map[string]string // instance -> binary
	replaced []replacement
	busy     int // replacements under way
	overlap  bool
	fail     map[string]error // instance -> what Replace returns
}

type replacement struct {
	name, bin string
	at        time.Time
}

func (s *system) Replace(ctx context.Context, name, bin string) error {
	s.mu.Lock()
	s.busy++
	s.overlap = s.overlap || s.busy > 1
	s.mu.Unlock()
	time.Sleep(10 * time.Millisecond) // down, then ready
	s.mu.Lock()
	defer s.mu.Unlock()
	s.busy--
	s.replaced = append(s.replaced, replacement{name, bin, time.Now()})
	if err := s.fail[name]; err != nil {
		return err
	}
	s.runs[name] = bin
	return ctx.Err()
}

func (s *system) Stale() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, bin := range s.runs {
		if !strings.HasPrefix(bin, "/new/") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

func oldSystem(names ...string) *system {
	s := &system{runs: map[string]string{}, fail: map[string]error{}}
	for _, n := range names {
		s.runs[n] = "/old/" + strings.TrimSuffix(n, "-2")
	}
	return s
}

func newBins(services ...string) map[string]string {
	out := map[string]string{}
	for _, s := range services {
		out[s] = "/new/" + s
	}
	return out
}

// TestRollingReplacesOneInstanceAtATimeInOrderOverTheSpan: consumers
// first, the producer last, every instance of a service before the next
// service, one at a time, none before its turn; at the end every process
// runs the new build.
func TestRollingReplacesOneInstanceAtATimeInOrderOverTheSpan(t *testing.T) {
	t.Parallel()
	sys := oldSystem("audit-service", "audit-service-2", "order-service", "order-service-2", "payment-gateway")
	sys.runs["payment-gateway"] = "/new/payment-gateway" // never old
	var log bytes.Buffer
	span := 800 * time.Millisecond
	r, err := New(Config{From: "bf6c2a2", Order: []string{"audit-service", "order-service"}, Instances: 2,
		Bins: newBins("audit-service", "order-service"), Span: span}, sys, &log)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r.Run(context.Background())

	want := []string{"audit-service", "audit-service-2", "order-service", "order-service-2"}
	var got []string
	for i, rep := range sys.replaced {
		got = append(got, rep.name)
		if rep.bin != "/new/"+strings.TrimSuffix(rep.name, "-2") {
			t.Errorf("%s replaced by %s", rep.name, rep.bin)
		}
		// The i-th of n is due span*(i+1)/n after the start: none sooner.
		if due := start.Add(span * time.Duration(i+1) / 4); rep.at.Before(due) {
			t.Errorf("%s replaced %s before its turn", rep.name, due.Sub(rep.at))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("replaced %v, want %v", got, want)
	}
	if sys.overlap {
		t.Fatal("two instances were replaced at once")
	}
	if v := r.Check(); len(v) != 0 {
		t.Fatalf("Check() = %q, want none", v)
	}
	s := r.Summary()
	if s.Planned != 4 || len(s.Steps) != 4 || s.Errors != 0 || !s.Checked || len(s.Stale) != 0 {
		t.Fatalf("Summary() = %+v", s)
	}
	text := s.Text()
	for _, want := range []string{
		"upgrade: from bf6c2a2, 4 of 4 instances replaced (audit-service → order-service), 0 failed",
		"order-service-2 old (bf6c2a2) → new (ready ",
		"upgrade: every process runs the new build at the end",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary %q lacks %q", text, want)
		}
	}
	if !strings.Contains(log.String(), "audit-service-2 old (bf6c2a2) → new") || !strings.Contains(log.String(), "upgrade: done in") {
		t.Errorf("log %q does not show each step", log.String())
	}
}

// TestRollingReportsWhatWentWrong: a failed replacement is reported and
// the upgrade goes on; what still runs the old build at the end is
// reported; so are the instances a cancelled upgrade never reached.
func TestRollingReportsWhatWentWrong(t *testing.T) {
	t.Parallel()
	sys := oldSystem("audit-service", "audit-service-2", "order-service", "order-service-2")
	sys.fail["audit-service-2"] = fmt.Errorf("audit-service-2: not ready: %w", context.DeadlineExceeded)
	r, err := New(Config{From: "v1", Order: []string{"audit-service", "order-service"}, Instances: 2,
		Bins: newBins("audit-service", "order-service")}, sys, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	r.Run(context.Background())
	v := r.Check()
	want := []string{
		"upgrade: replacing audit-service-2 failed: audit-service-2: not ready: context deadline exceeded",
		"upgrade: not running the new build at the end: audit-service-2",
	}
	if !slices.Equal(v, want) {
		t.Fatalf("Check() = %q, want %q", v, want)
	}
	if s := r.Summary(); s.Errors != 1 || len(s.Steps) != 4 || !strings.Contains(s.Text(), "ERROR audit-service-2: not ready") {
		t.Fatalf("Summary() = %+v\n%s", s, s.Text())
	}

	cancelled := oldSystem("audit-service", "audit-service-2")
	r, err = New(Config{From: "v1", Order: []string{"audit-service"}, Instances: 2, Bins: newBins("audit-service"), Span: time.Hour}, cancelled, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.Run(ctx)
	want = []string{
		"upgrade: 2 of 2 instances were not replaced",
		"upgrade: not running the new build at the end: audit-service, audit-service-2",
	}
	if v := r.Check(); !slices.Equal(v, want) {
		t.Fatalf("Check() after a cancelled upgrade = %q, want %q", v, want)
	}
}

func TestPlan(t *testing.T) {
	t.Parallel()
	got := Plan([]string{"payment-service", "order-service"}, 3)
	want := []string{"payment-service", "payment-service-2", "payment-service-3", "order-service", "order-service-2", "order-service-3"}
	if !slices.Equal(got, want) {
		t.Fatalf("Plan = %v, want %v", got, want)
	}
}
