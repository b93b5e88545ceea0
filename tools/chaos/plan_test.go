package chaos

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestPlan(t *testing.T) {
	t.Parallel()
	services := []string{"order-service", "inventory-service"}
	tests := []struct {
		name      string
		cfg       PlanConfig
		wantKinds []Kind // each must appear
		noKinds   []Kind // none may appear
		minSteps  int
	}{
		{name: "a minute exercises every kind", cfg: PlanConfig{Duration: time.Minute, Gap: 2 * time.Second, Services: services},
			wantKinds: Kinds, minSteps: len(Kinds) + 2},
		{name: "ten minutes", cfg: PlanConfig{Duration: 10 * time.Minute, Gap: 3 * time.Second, Services: services},
			wantKinds: Kinds, minSteps: 80},
		{name: "no services: no kills", cfg: PlanConfig{Duration: time.Minute, Gap: 2 * time.Second},
			noKinds: []Kind{KillService}, minSteps: len(Kinds) - 1},
		{name: "a cluster's long node outages", cfg: PlanConfig{Duration: 30 * time.Second, Gap: 2 * time.Second, Services: services, NATSDown: 12 * time.Second},
			wantKinds: []Kind{RestartNATS}, minSteps: 3},
		{name: "too short for any fault", cfg: PlanConfig{Duration: time.Second, Gap: 2 * time.Second, Services: services}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for seed := range uint64(50) {
				steps := Plan(rand.New(rand.NewPCG(seed, 1)), tt.cfg)
				if len(steps) < tt.minSteps {
					t.Fatalf("seed %d: %d steps, want >= %d: %v", seed, len(steps), tt.minSteps, steps)
				}
				seen := map[Kind]bool{}
				var prevEnd time.Duration
				for i, s := range steps {
					seen[s.Kind] = true
					if s.At < prevEnd+tt.cfg.Gap/2 || s.At > prevEnd+tt.cfg.Gap*3/2 {
						t.Fatalf("seed %d step %d %v starts at %s, %s after the previous fault; want a gap in [%s, %s]", seed, i, s, s.At, s.At-prevEnd, tt.cfg.Gap/2, tt.cfg.Gap*3/2)
					}
					if s.End() >= tt.cfg.Duration {
						t.Fatalf("seed %d step %d %v ends at %s, after the run (%s)", seed, i, s, s.End(), tt.cfg.Duration)
					}
					checkStep(t, s, services, tt.cfg.NATSDown)
					prevEnd = s.End()
				}
				for _, k := range tt.wantKinds {
					if !seen[k] {
						t.Fatalf("seed %d: no %s in %v", seed, k, steps)
					}
				}
				for _, k := range tt.noKinds {
					if seen[k] {
						t.Fatalf("seed %d: %s in %v", seed, k, steps)
					}
				}
			}
		})
	}
}

func checkStep(t *testing.T, s Step, services []string, natsDown time.Duration) {
	t.Helper()
	if natsDown == 0 {
		natsDown = 2 * time.Second
	}
	in := func(d, lo, hi time.Duration) bool { return d >= lo && d <= hi }
	var ok bool
	switch s.Kind {
	case KillService:
		ok = slices.Contains(services, s.Target) && in(s.For, time.Second, 3*time.Second)
	case GatewayDown, GatewayFlaky, GatewaySlow:
		ok = s.Target == "" && in(s.For, 2*time.Second, 5*time.Second)
	case RestartNATS:
		ok = in(s.For, natsDown/2, natsDown)
	case Duplicates:
		ok = s.For == 0 && s.Count >= 5 && s.Count <= 20
	case Poison:
		ok = s.For == 0 && s.Count >= 1 && s.Count <= 3
	}
	if !ok {
		t.Fatalf("step out of range: %+v", s)
	}
}

func TestPlanIsReproducible(t *testing.T) {
	t.Parallel()
	cfg := PlanConfig{Duration: 2 * time.Minute, Gap: 3 * time.Second, Services: []string{"a", "b", "c"}}
	a := Plan(rand.New(rand.NewPCG(42, 7)), cfg)
	b := Plan(rand.New(rand.NewPCG(42, 7)), cfg)
	c := Plan(rand.New(rand.NewPCG(43, 7)), cfg)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different plans:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatalf("different seeds, same plan: %v", a)
	}
}
