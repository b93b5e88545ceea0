// Package chaos disturbs a running eventshop system while load runs: it
// SIGKILLs and restarts services, takes the payment gateway down, makes it
// flaky or slow, restarts the NATS server, and injects duplicate and poison
// events; it records exactly which poison it injected, so that afterwards
// the dead letters can be checked to be exactly that poison.
package chaos

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Kind is one kind of fault.
type Kind string

// The faults.
const (
	// KillService SIGKILLs a service and restarts it after Step.For.
	KillService Kind = "kill-service"
	// GatewayDown makes the gateway answer 503 for Step.For.
	GatewayDown Kind = "gateway-down"
	// GatewayFlaky makes the gateway fail half its charges for Step.For.
	GatewayFlaky Kind = "gateway-flaky"
	// GatewaySlow makes the gateway charge, then answer after the payment
	// service has timed out, for Step.For: the retries must replay.
	GatewaySlow Kind = "gateway-slow"
	// RestartNATS shuts the NATS server down and starts it again after
	// Step.For, on the same port and store.
	RestartNATS Kind = "restart-nats"
	// Duplicates republishes Step.Count stored events under new message
	// ids, so the server's duplicate window does not drop them.
	Duplicates Kind = "duplicates"
	// Poison publishes Step.Count schema-invalid events on
	// orders.<new id>.created.
	Poison Kind = "poison"
)

// Kinds lists every fault.
var Kinds = []Kind{KillService, GatewayDown, GatewayFlaky, GatewaySlow, RestartNATS, Duplicates, Poison}

// weights of the kinds after each has been drawn once: crashes are the
// interesting part, NATS restarts the most disruptive.
var weights = map[Kind]int{KillService: 4, GatewayDown: 2, GatewayFlaky: 1, GatewaySlow: 1, RestartNATS: 1, Duplicates: 2, Poison: 2}

// Step is one scheduled fault.
type Step struct {
	At     time.Duration // from the start of the run
	Kind   Kind
	Target string        // the service, for KillService
	For    time.Duration // how long the fault lasts
	Count  int           // messages, for Duplicates and Poison
}

// End is when the step's fault is over.
func (s Step) End() time.Duration { return s.At + s.For }

func (s Step) String() string {
	switch s.Kind {
	case KillService:
		return fmt.Sprintf("%s %s (restart after %s)", s.Kind, s.Target, s.For.Round(time.Millisecond))
	case Duplicates, Poison:
		return fmt.Sprintf("%s x%d", s.Kind, s.Count)
	default:
		return fmt.Sprintf("%s for %s", s.Kind, s.For.Round(time.Millisecond))
	}
}

// PlanConfig shapes a schedule.
type PlanConfig struct {
	Duration time.Duration // faults end before this
	Gap      time.Duration // mean quiet time between two faults
	Services []string      // the services KillService may pick
	// NATSDown is the longest a RestartNATS keeps the server (in a
	// cluster: one node) down; it is drawn from [NATSDown/2, NATSDown].
	// 0 means 2s.
	NATSDown time.Duration
}

// Plan draws a schedule from rng: faults one after the other, each
// followed by a quiet gap drawn from [Gap/2, 3Gap/2], all over before
// Duration. The first steps are every kind once and two more crashes, in
// random order, so even a short run exercises each; later ones are
// weighted. The same rng state gives the same plan.
func Plan(rng *rand.Rand, c PlanConfig) []Step {
	if c.Gap <= 0 {
		c.Gap = 3 * time.Second
	}
	if c.NATSDown <= 0 {
		c.NATSDown = 2 * time.Second
	}
	kinds := make([]Kind, 0, len(Kinds))
	for _, k := range Kinds {
		if k == KillService && len(c.Services) == 0 {
			continue
		}
		kinds = append(kinds, k)
	}
	if len(kinds) == 0 {
		return nil
	}
	first := append([]Kind(nil), kinds...)
	if len(c.Services) > 0 {
		first = append(first, KillService, KillService)
	}
	rng.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	if c.NATSDown > 2*time.Second {
		// A long (cluster node) outage goes first, so even a short run
		// has room for it.
		if i := slices.Index(first, RestartNATS); i > 0 {
			first[0], first[i] = first[i], first[0]
		}
	}
	total := 0
	for _, k := range kinds {
		total += weights[k]
	}
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }

	var steps []Step
	at := between(c.Gap/2, c.Gap*3/2)
	for i := 0; ; i++ {
		var k Kind
		if i < len(first) {
			k = first[i]
		} else {
			n := rng.IntN(total)
			for _, kk := range kinds {
				if n -= weights[kk]; n < 0 {
					k = kk
					break
				}
			}
		}
		s := Step{At: at, Kind: k}
		switch k {
		case KillService:
			s.Target = c.Services[rng.IntN(len(c.Services))]
			s.For = between(time.Second, 3*time.Second)
		case GatewayDown, GatewayFlaky, GatewaySlow:
			s.For = between(2*time.Second, 5*time.Second)
		case RestartNATS:
			s.For = between(c.NATSDown/2, c.NATSDown)
		case Duplicates:
			s.Count = 5 + rng.IntN(16)
		case Poison:
			s.Count = 1 + rng.IntN(3)
		}
		if s.End() >= c.Duration {
			return steps
		}
		steps = append(steps, s)
		at = s.End() + between(c.Gap/2, c.Gap*3/2)
	}
}
