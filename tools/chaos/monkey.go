package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderInjected marks a message chaos published: "duplicate" or "poison".
// Handlers ignore it; a dead letter keeps it, which tells the two apart.
const HeaderInjected = "Chaos-Injected"

// System is the running system chaos acts on.
type System interface {
	Kill(service string) error  // SIGKILL, wait for the exit
	Start(service string) error // start again (no-op if running)
	StopNATS()                  // shut the NATS server down
	StartNATS() error           // start it again on the same port and store
}

// Config says what to disturb and how.
type Config struct {
	Seed     uint64
	Duration time.Duration // faults end before this
	Gap      time.Duration // mean quiet time between faults
	Services []string      // services that may be killed
	NATSDown time.Duration // longest NATS (node) outage; 0: 2s

	GatewayURL  string        // the simulator, for its /admin/mode
	AdminToken  string        // the simulator's ADMIN_TOKEN, for /admin/mode
	SlowLatency time.Duration // gateway slow mode: longer than the payment service's GATEWAY_TIMEOUT

	NATSURL, NATSUser, NATSPassword string // an account that may publish anywhere (admin)
}

// Event is one line of the chaos log.
type Event struct {
	Time   time.Time     `json:"time"`
	Offset time.Duration `json:"offset_ns"`
	What   string        `json:"what"`
	Err    string        `json:"error,omitempty"`
}

func (e Event) String() string {
	s := fmt.Sprintf("%s +%6.2fs %s", e.Time.Format("15:04:05.000"), e.Offset.Seconds(), e.What)
	if e.Err != "" {
		s += ": ERROR " + e.Err
	}
	return s
}

// Monkey runs a chaos plan against a system and remembers what it did.
type Monkey struct {
	cfg    Config
	sys    System
	out    io.Writer
	plan   []Step
	rng    *rand.Rand
	nc     *nats.Conn
	js     jetstream.JetStream
	client *http.Client
	run    string

	mu     sync.Mutex
	start  time.Time
	events []Event
	counts map[Kind]int
	poison []Injected
	dups   int // duplicates attempted (message ids used)
	stored int // duplicates stored
	errs   int
}

// New plans the chaos of cfg and connects to NATS for the injections.
func New(cfg Config, sys System, out io.Writer) (*Monkey, error) {
	if cfg.Duration <= 0 {
		return nil, errors.New("chaos: duration must be > 0")
	}
	if cfg.SlowLatency <= 0 {
		cfg.SlowLatency = 3 * time.Second
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xc4a05))
	plan := Plan(rng, PlanConfig{Duration: cfg.Duration, Gap: cfg.Gap, Services: cfg.Services, NATSDown: cfg.NATSDown})
	opts := []nats.Option{nats.Name("loadgen-chaos"), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond)}
	if cfg.NATSUser != "" {
		opts = append(opts, nats.UserInfo(cfg.NATSUser, cfg.NATSPassword))
	}
	nc, err := nats.Connect(cfg.NATSURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("chaos: connect to nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("chaos: %w", err)
	}
	return &Monkey{
		cfg: cfg, sys: sys, out: out, plan: plan, rng: rng, nc: nc, js: js,
		client: &http.Client{Timeout: 5 * time.Second},
		run:    fmt.Sprintf("%x", cfg.Seed&0xffffff),
		counts: map[Kind]int{},
	}, nil
}

// Close closes the NATS connection.
func (m *Monkey) Close() { m.nc.Close() }

// Plan returns the schedule.
func (m *Monkey) Plan() []Step { return slices.Clone(m.plan) }

func (m *Monkey) logf(err error, format string, args ...any) {
	m.mu.Lock()
	now := time.Now()
	e := Event{Time: now, Offset: now.Sub(m.start), What: fmt.Sprintf(format, args...)}
	if err != nil {
		e.Err = err.Error()
		m.errs++
	}
	m.events = append(m.events, e)
	m.mu.Unlock()
	if m.out != nil {
		fmt.Fprintln(m.out, "chaos:", e)
	}
}

// Run executes the plan from now until it is done or ctx ends; a fault in
// progress is always undone. It then makes sure every service runs, the
// gateway is healthy and NATS is up.
func (m *Monkey) Run(ctx context.Context) {
	m.mu.Lock()
	m.start = time.Now()
	m.mu.Unlock()
	m.logf(nil, "seed %d: %d faults planned over %s", m.cfg.Seed, len(m.plan), m.cfg.Duration)
	for _, s := range m.plan {
		if !sleep(ctx, time.Until(m.start.Add(s.At))) {
			break
		}
		m.do(ctx, s)
	}
	m.restore()
}

// sleep waits d or until ctx ends, and reports whether the whole d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (m *Monkey) do(ctx context.Context, s Step) {
	m.mu.Lock()
	m.counts[s.Kind]++
	m.mu.Unlock()
	// A fault, once started, runs its course (shortened if the run ends)
	// and is undone: the injections finish even after ctx ends.
	inject := context.WithoutCancel(ctx)
	switch s.Kind {
	case KillService:
		m.logf(m.sys.Kill(s.Target), "SIGKILL %s", s.Target)
		sleep(ctx, s.For)
		m.logf(m.sys.Start(s.Target), "restart %s", s.Target)
	case GatewayDown, GatewayFlaky, GatewaySlow:
		mode := map[Kind]gatewayMode{
			GatewayDown:  {Mode: "down"},
			GatewayFlaky: {Mode: "flaky", ErrorRate: 0.5},
			GatewaySlow:  {Mode: "slow", LatencyMS: m.cfg.SlowLatency.Milliseconds()},
		}[s.Kind]
		m.logf(m.setGateway(inject, mode), "gateway %s for %s", mode, s.For.Round(time.Millisecond))
		sleep(ctx, s.For)
		m.logf(m.setGateway(inject, gatewayMode{Mode: "healthy"}), "gateway healthy")
	case RestartNATS:
		m.logf(nil, "nats-server shutdown (down for %s)", s.For.Round(time.Millisecond))
		m.sys.StopNATS()
		sleep(ctx, s.For)
		m.logf(m.sys.StartNATS(), "nats-server started")
	case Duplicates:
		n, err := m.duplicate(inject, s.Count)
		m.logf(err, "republished %d stored events under new message ids", n)
	case Poison:
		for range s.Count {
			p, err := m.injectPoison(inject)
			m.logf(err, "poison %s seq %d on %s (%s)", p.Stream, p.Seq, p.Subject, p.What)
		}
	}
}

// restore undoes whatever may be left of a fault.
func (m *Monkey) restore() {
	ctx := context.Background()
	if err := m.sys.StartNATS(); err != nil {
		m.logf(err, "restore: start nats-server")
	}
	for _, name := range m.cfg.Services {
		if err := m.sys.Start(name); err != nil {
			m.logf(err, "restore: start %s", name)
		}
	}
	if err := m.setGateway(ctx, gatewayMode{Mode: "healthy"}); err != nil {
		m.logf(err, "restore: gateway healthy")
	}
	m.logf(nil, "chaos over: every service running, gateway healthy, nats-server up")
}

type gatewayMode struct {
	Mode      string  `json:"mode"`
	LatencyMS int64   `json:"latency_ms,omitempty"`
	ErrorRate float64 `json:"error_rate,omitempty"`
}

func (g gatewayMode) String() string {
	switch g.Mode {
	case "flaky":
		return fmt.Sprintf("flaky (%.0f%% errors)", 100*g.ErrorRate)
	case "slow":
		return fmt.Sprintf("slow (%dms)", g.LatencyMS)
	}
	return g.Mode
}

func (m *Monkey) setGateway(ctx context.Context, g gatewayMode) error {
	body, err := json.Marshal(g)
	if err != nil {
		return err
	}
	return retry(ctx, 30*time.Second, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, m.cfg.GatewayURL+"/admin/mode", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+m.cfg.AdminToken)
		resp, err := m.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body) // only for the error message
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("PUT /admin/mode %s = %d %s", g, resp.StatusCode, bytes.TrimSpace(b))
		}
		return nil
	})
}

// retry calls f (each call bounded to 3s) until it succeeds or within
// passes, and returns its last error.
func retry(ctx context.Context, within time.Duration, f func(context.Context) error) error {
	deadline := time.Now().Add(within)
	for {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := f(cctx)
		cancel()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// publish stores msg once: every attempt carries the same message id, so a
// retry after a lost acknowledgement (NATS restarting) is answered with the
// sequence of the first.
func (m *Monkey) publish(ctx context.Context, msg *nats.Msg, id string) (*jetstream.PubAck, error) {
	var ack *jetstream.PubAck
	err := retry(ctx, 60*time.Second, func(ctx context.Context) error {
		var err error
		ack, err = m.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", msg.Subject, err)
	}
	return ack, nil
}

// poisons are schema-invalid events: not JSON, JSON but not an event, and
// an envelope whose data breaks the order.created schema (no items).
var poisons = []struct{ what, data string }{
	{"not json", "\x00\xffchaos: this is not an event"},
	{"not an event", `{"not":"an event","chaos":true}`},
	{"schema-invalid created", `{"specversion":"1.0","id":"%s","source":"chaos","type":"shop.order.created","subject":"%s","time":"2026-01-01T00:00:00Z","datacontenttype":"application/json","dataschema":"https://schemas.eventshop.dev/events/order.created/v1.json","traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","data":{"order_id":"%s","items":[]}}`},
}

func (m *Monkey) injectPoison(ctx context.Context) (Injected, error) {
	m.mu.Lock()
	n := len(m.poison)
	pick := poisons[m.rng.IntN(len(poisons))]
	m.mu.Unlock()
	id := fmt.Sprintf("chaos-%s-p%d", m.run, n)
	data := pick.data
	if strings.Contains(data, "%s") {
		data = fmt.Sprintf(data, id, id, id)
	}
	msg := nats.NewMsg("orders." + id + ".created")
	msg.Data = []byte(data)
	msg.Header.Set(HeaderInjected, "poison")
	p := Injected{Stream: "ORDERS", Subject: msg.Subject, What: pick.what}
	ack, err := m.publish(ctx, msg, id)
	if err != nil {
		return p, err
	}
	p.Stream, p.Seq = ack.Stream, ack.Sequence
	m.mu.Lock()
	m.poison = append(m.poison, p)
	m.mu.Unlock()
	return p, nil
}

// duplicate republishes n stored events, picked at random (half of them
// among the latest, where orders are still in flight), each under a new
// message id, and returns how many it stored.
func (m *Monkey) duplicate(ctx context.Context, n int) (int, error) {
	stored := 0
	for i := 0; i < n; i++ {
		m.mu.Lock()
		name := DomainStreams[m.rng.IntN(len(DomainStreams))]
		recent := m.rng.IntN(2) == 0
		pick := m.rng.Uint64()
		m.mu.Unlock()
		var msg *jetstream.RawStreamMsg
		err := retry(ctx, 30*time.Second, func(ctx context.Context) error {
			s, err := m.js.Stream(ctx, name)
			if err != nil {
				return err
			}
			info := s.CachedInfo()
			if info.State.Msgs == 0 {
				return nil
			}
			lo, hi := info.State.FirstSeq, info.State.LastSeq
			if recent && hi-lo > 200 {
				lo = hi - 200
			}
			msg, err = s.GetMsg(ctx, lo+pick%(hi-lo+1))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				msg, err = nil, nil // a gap (deleted message): skip it
			}
			return err
		})
		if err != nil {
			return stored, fmt.Errorf("read %s: %w", name, err)
		}
		if msg == nil || isChaos(msg) {
			continue
		}
		dup := nats.NewMsg(msg.Subject)
		dup.Data = msg.Data
		for k, v := range msg.Header {
			if !strings.HasPrefix(k, "Nats-") {
				dup.Header[k] = v
			}
		}
		dup.Header.Set(HeaderInjected, "duplicate")
		m.mu.Lock()
		id := fmt.Sprintf("chaos-%s-d%d", m.run, m.dups)
		m.dups++
		m.mu.Unlock()
		if _, err := m.publish(ctx, dup, id); err != nil {
			return stored, err
		}
		stored++
		m.mu.Lock()
		m.stored++
		m.mu.Unlock()
	}
	return stored, nil
}

// Check waits up to timeout for the dead letters to be exactly the poison
// injected, and returns the differences left.
func (m *Monkey) Check(ctx context.Context, timeout time.Duration) []string {
	m.mu.Lock()
	poison := slices.Clone(m.poison)
	m.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for {
		v, letters := m.compare(ctx, poison)
		if len(v) == 0 {
			m.logf(nil, "dead letters are exactly the poison: %d letters for %d poison messages", letters, len(poison))
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return v
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (m *Monkey) compare(ctx context.Context, poison []Injected) ([]string, int) {
	durables, err := ReadDurables(ctx, m.js, DomainStreams)
	if err != nil {
		return []string{err.Error()}, 0
	}
	letters, messages, err := ReadLetters(ctx, m.js)
	if err != nil {
		return []string{err.Error()}, 0
	}
	return CompareDeadLetters(poison, durables, letters, messages), len(letters)
}

// Summary is what chaos did.
type Summary struct {
	Seed       uint64       `json:"seed"`
	Planned    int          `json:"planned"`
	Faults     map[Kind]int `json:"faults"`
	Duplicates int          `json:"duplicates"`
	Poison     []Injected   `json:"poison"`
	Errors     int          `json:"errors"`
	Log        []Event      `json:"log"`
}

// Summary returns what chaos did so far.
func (m *Monkey) Summary() Summary {
	m.mu.Lock()
	defer m.mu.Unlock()
	faults := map[Kind]int{}
	for k, v := range m.counts {
		faults[k] = v
	}
	return Summary{Seed: m.cfg.Seed, Planned: len(m.plan), Faults: faults, Duplicates: m.stored,
		Poison: slices.Clone(m.poison), Errors: m.errs, Log: slices.Clone(m.events)}
}

// Text renders the summary for a terminal.
func (s Summary) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: seed %d, %d faults planned", s.Seed, s.Planned)
	for _, k := range Kinds {
		if s.Faults[k] > 0 {
			fmt.Fprintf(&b, ", %s %d", k, s.Faults[k])
		}
	}
	fmt.Fprintf(&b, "; %d duplicates, %d poison injected, %d errors\n", s.Duplicates, len(s.Poison), s.Errors)
	for _, e := range s.Log {
		b.WriteString("  " + e.String() + "\n")
	}
	return b.String()
}
