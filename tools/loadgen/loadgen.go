// Package loadgen drives the eventshop HTTP API with orders, measures each
// order's time from POST /orders to its final event, and checks the
// business invariants through the public APIs afterwards.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/api"
	"github.com/eventshop/shared/platform/natsconn"
)

// Config says what to drive and how.
type Config struct {
	OrderURL, InventoryURL, GatewayURL, NotificationURL, AuditURL string
	// MoreOrderURLs are further order-service instances: POSTs go to each
	// in turn, and a retried POST (same Idempotency-Key) goes to the next.
	MoreOrderURLs                   []string
	NATSURL, NATSUser, NATSPassword string
	AdminToken                      string

	Mode        string        // "closed" (Concurrency in flight) or "open" (Rate per second)
	Concurrency int           // closed loop: orders in flight
	Rate        float64       // open loop: orders offered per second
	Duration    time.Duration // how long to offer load
	MaxOrders   int           // stop after this many accepted orders (0: no limit)

	SKUs         int     // catalogue size
	StockPerSKU  int64   // initial stock of each SKU
	HotShare     float64 // share of lines on the hot SKU
	DeclineShare float64 // share of orders paid with a declined card
	UnknownShare float64 // share of orders naming an unknown SKU

	SettleTimeout time.Duration // how long to wait for every order to finish
	Check         bool          // check the invariants at the end
	// CheckPatience is how long each check waits for a broken invariant to
	// mend (stock commits after the final event, ...) before it reports
	// it: 0 is 30s (the audit twice that).
	CheckPatience time.Duration
	Seed          uint64

	// PostRetry is how long a POST /orders that got no answer (or a 5xx)
	// is retried with the same Idempotency-Key, as a careful client
	// would: an order the service stored before it died is then known by
	// its id instead of leaking unseen. 0: no retries.
	PostRetry time.Duration
	// UntilFinal makes the closed loop keep each order in flight until
	// its final event arrives (not only until POST answers), so
	// Concurrency bounds whole sagas and the rate is what the system
	// sustains end to end. Needs NATSURL.
	UntilFinal bool
	// Disturb, if set, runs while load is offered, with a context that
	// ends with the load; Run waits for it to return before it waits for
	// the orders to finish (chaos.Monkey.Run).
	Disturb func(ctx context.Context)
}

func (c *Config) setDefaults() {
	if c.Mode == "" {
		c.Mode = "closed"
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.SKUs == 0 {
		c.SKUs = 20
	}
	if c.StockPerSKU == 0 {
		c.StockPerSKU = 1_000_000
	}
	if c.SettleTimeout == 0 {
		c.SettleTimeout = 2 * time.Minute
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
}

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	switch {
	case c.Mode != "closed" && c.Mode != "open":
		return fmt.Errorf("mode %q: want closed or open", c.Mode)
	case c.Mode == "open" && c.Rate <= 0:
		return errors.New("open loop needs a rate > 0")
	case c.OrderURL == "" || c.InventoryURL == "":
		return errors.New("order and inventory URLs are required")
	case c.AdminToken == "":
		return errors.New("the admin token is required to stock the catalogue")
	case c.UntilFinal && (c.Mode != "closed" || c.NATSURL == ""):
		return errors.New("until-final needs the closed loop and a NATS URL for the final events")
	case c.HotShare < 0 || c.DeclineShare < 0 || c.UnknownShare < 0 || c.DeclineShare+c.UnknownShare > 1:
		return errors.New("shares must be >= 0 and decline+unknown <= 1")
	}
	return nil
}

// placed is one accepted order.
type placed struct {
	id      string
	start   time.Time // intended start in open loop (no coordinated omission)
	lines   []api.Item
	decline bool
	unknown bool
}

type final struct {
	status string
	at     time.Time
	polled bool // seen by polling, not by its event: at is only an upper bound
}

// Runner runs one load test.
type Runner struct {
	cfg    Config
	client *http.Client
	out    io.Writer
	run    string
	skus   []string

	mu         sync.Mutex
	orders     []*placed
	finals     map[string]final
	conflicts  map[string]bool          // orders with both a confirmed and a cancelled event
	waiters    map[string]chan struct{} // closed-loop orders waiting for their final event
	events     bool                     // final events are watched on NATS (polling only fills gaps)
	finalsSeen atomic.Int64             // final events delivered by the watch
	postLat    Latencies
	refused    atomic.Int64
	retried    atomic.Int64 // POSTs answered only after a retry (PostRetry)
	accepted   atomic.Int64
	posts      atomic.Uint64 // POSTs begun: which order-service instance is next
}

// New returns a runner for cfg that logs progress to out.
func New(cfg Config, out io.Writer) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 1024
	tr.MaxConnsPerHost = 0
	return &Runner{
		cfg:       cfg,
		client:    &http.Client{Timeout: 30 * time.Second, Transport: tr},
		out:       out,
		run:       fmt.Sprintf("%x", cfg.Seed&0xffffff),
		finals:    map[string]final{},
		conflicts: map[string]bool{},
		waiters:   map[string]chan struct{}{},
	}, nil
}

// Run stocks the catalogue, offers load, waits for every order to finish and
// (if configured) checks the invariants.
func (r *Runner) Run(ctx context.Context) (Report, error) {
	var nc *nats.Conn
	if r.cfg.NATSURL != "" {
		opts := []nats.Option{nats.Name("loadgen"), nats.MaxReconnects(-1)}
		if r.cfg.NATSUser != "" {
			opts = append(opts, nats.UserInfo(r.cfg.NATSUser, r.cfg.NATSPassword))
		}
		var err error
		nc, err = nats.Connect(r.cfg.NATSURL, opts...)
		if err != nil {
			return Report{}, fmt.Errorf("connect to nats for final-event timestamps: %w", err)
		}
		defer nc.Close()
		stop, err := r.watchFinals(ctx, nc)
		if err != nil {
			return Report{}, err
		}
		defer stop()
		r.events = true
	}
	if err := r.stock(ctx); err != nil {
		return Report{}, err
	}
	fmt.Fprintf(r.out, "loadgen: run %s, %d SKUs stocked, offering %s load for %s\n", r.run, len(r.skus), r.cfg.Mode, r.cfg.Duration)
	start := time.Now()
	disturbed := make(chan struct{})
	if r.cfg.Disturb != nil {
		dctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
		go func() {
			defer close(disturbed)
			defer cancel()
			r.cfg.Disturb(dctx)
		}()
	} else {
		close(disturbed)
	}
	if r.cfg.Mode == "closed" {
		r.closedLoop(ctx)
	} else {
		r.openLoop(ctx)
	}
	offered := time.Since(start)
	<-disturbed
	fmt.Fprintf(r.out, "loadgen: %d orders accepted in %s; waiting for them to finish\n", r.accepted.Load(), offered.Round(time.Millisecond))
	notFinal := r.settle(ctx, nc != nil)
	rep := r.report(start, offered, notFinal)
	if r.cfg.Check {
		rep.Violations = r.check(ctx, nc)
	}
	return rep, nil
}

// finalSubjects are the subjects of the events that decide an order.
var finalSubjects = []string{"orders.*.confirmed", "orders.*.cancelled"}

// watchFinals follows the final events stored in ORDERS from now on, with
// an ordered consumer (it resumes after its last event when NATS restarts).
// Only what the stream stored counts: a plain subscription would also see
// a publish the stream refused, such as the losing decision of two that
// race (the services publish a decision only after the order's last event,
// and the stream refuses the second).
func (r *Runner) watchFinals(ctx context.Context, nc *nats.Conn) (stop func(), err error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("watch final events: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute) // the order service creates ORDERS as it starts
	orders, err := natsconn.WaitStream(wctx, js, "ORDERS")
	cancel()
	if err != nil {
		return nil, fmt.Errorf("watch final events: %w", err)
	}
	cons, err := orders.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: finalSubjects,
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("watch final events in ORDERS: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		r.onFinal(m.Subject(), time.Now()) // an ordered consumer takes no acks
	})
	if err != nil {
		return nil, fmt.Errorf("watch final events in ORDERS: %w", err)
	}
	return cc.Stop, nil
}

// onFinal records a stored final event, seen at the given time.
func (r *Runner) onFinal(subject string, at time.Time) {
	r.finalsSeen.Add(1)
	parts := strings.Split(subject, ".")
	if len(parts) != 3 {
		return
	}
	status := "CONFIRMED"
	if parts[2] == "cancelled" {
		status = "CANCELLED"
	}
	r.mu.Lock()
	if f, ok := r.finals[parts[1]]; !ok {
		r.finals[parts[1]] = final{status: status, at: at}
		if w, ok := r.waiters[parts[1]]; ok {
			close(w)
			delete(r.waiters, parts[1])
		}
	} else if f.status != status {
		r.conflicts[parts[1]] = true
	}
	r.mu.Unlock()
}

func (r *Runner) stock(ctx context.Context) error {
	for i := range r.cfg.SKUs {
		sku := fmt.Sprintf("LG-%s-%03d", r.run, i)
		body := api.PutStockRequest{Name: "load " + sku, PriceCents: int64(100 + i), Currency: "USD", Available: r.cfg.StockPerSKU}
		code, err := r.do(ctx, http.MethodPut, r.cfg.InventoryURL+"/inventory/"+sku, body, map[string]string{"Authorization": "Bearer " + r.cfg.AdminToken}, nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK && code != http.StatusCreated {
			return fmt.Errorf("PUT /inventory/%s = %d", sku, code)
		}
		r.skus = append(r.skus, sku)
	}
	return nil
}

// next builds a random order from the configured mix.
func (r *Runner) next(rng *rand.Rand) *placed {
	p := &placed{}
	pick := func() string {
		if rng.Float64() < r.cfg.HotShare || len(r.skus) == 1 {
			return r.skus[0]
		}
		return r.skus[1+rng.IntN(len(r.skus)-1)]
	}
	n := 1 + rng.IntN(2)
	seen := map[string]bool{}
	for range n {
		sku := pick()
		if seen[sku] {
			continue
		}
		seen[sku] = true
		p.lines = append(p.lines, api.Item{SKU: sku, Quantity: 1})
	}
	switch x := rng.Float64(); {
	case x < r.cfg.UnknownShare:
		p.unknown = true
		p.lines = append(p.lines, api.Item{SKU: "LG-" + r.run + "-unknown", Quantity: 1})
	case x < r.cfg.UnknownShare+r.cfg.DeclineShare:
		p.decline = true
	}
	return p
}

// place posts one order; start is when it was meant to be sent. With
// PostRetry it retries an unanswered or failed POST with the same
// Idempotency-Key.
func (r *Runner) place(ctx context.Context, p *placed, start time.Time, key string) {
	token := "tok_visa"
	if p.decline {
		token = "tok_chargeDeclined"
	}
	body := api.CreateOrderRequest{CustomerID: "lg-" + r.run, Items: p.lines, PaymentToken: token}
	headers := map[string]string{"Idempotency-Key": key}
	var resp api.OrderAccepted
	sent := time.Now()
	giveUp := sent.Add(r.cfg.PostRetry)
	backoff := 100 * time.Millisecond
	var code int
	var err error
	first := r.posts.Add(1)
	for attempt := first; ; attempt++ {
		code, err = r.do(ctx, http.MethodPost, r.orderURL(attempt)+"/orders", body, headers, &resp)
		retryable := err != nil || code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout
		if !retryable || time.Now().After(giveUp) || ctx.Err() != nil {
			if attempt != first && !retryable {
				r.retried.Add(1)
			}
			break
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, time.Second)
	}
	took := time.Since(sent)
	if err != nil || code != http.StatusAccepted || resp.OrderID == "" {
		r.refused.Add(1)
		return
	}
	p.id, p.start = resp.OrderID, start
	r.accepted.Add(1)
	r.mu.Lock()
	r.orders = append(r.orders, p)
	r.postLat.Add(took)
	r.mu.Unlock()
}

// orderURL returns the order-service instance for the n-th request.
func (r *Runner) orderURL(n uint64) string {
	if len(r.cfg.MoreOrderURLs) == 0 {
		return r.cfg.OrderURL
	}
	if i := n % uint64(1+len(r.cfg.MoreOrderURLs)); i > 0 {
		return r.cfg.MoreOrderURLs[i-1]
	}
	return r.cfg.OrderURL
}

// key returns a fresh Idempotency-Key.
func (r *Runner) key(rng *rand.Rand) string {
	return fmt.Sprintf("lg-%s-%016x%016x", r.run, rng.Uint64(), rng.Uint64())
}

func (r *Runner) full() bool {
	return r.cfg.MaxOrders > 0 && int(r.accepted.Load()) >= r.cfg.MaxOrders
}

func (r *Runner) closedLoop(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for w := range r.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(w)))
			for ctx.Err() == nil && !r.full() {
				p := r.next(rng)
				r.place(context.WithoutCancel(ctx), p, time.Now(), r.key(rng))
				if r.cfg.UntilFinal && p.id != "" {
					r.awaitFinal(ctx, p.id)
				}
			}
		}()
	}
	wg.Wait()
}

// awaitFinal blocks until the order's final event arrived, the load ends, or
// a minute passed (a missed event must not stall the worker for ever).
func (r *Runner) awaitFinal(ctx context.Context, id string) {
	r.mu.Lock()
	if _, ok := r.finals[id]; ok {
		r.mu.Unlock()
		return
	}
	w, ok := r.waiters[id]
	if !ok {
		w = make(chan struct{})
		r.waiters[id] = w
	}
	r.mu.Unlock()
	select {
	case <-w:
	case <-ctx.Done():
	case <-time.After(time.Minute):
	}
}

// openLoop offers orders at a fixed rate whatever the system does, and
// measures each from its scheduled time, so a slow system cannot slow the
// offered load down and hide its own latency (no coordinated omission).
func (r *Runner) openLoop(ctx context.Context) {
	rng := rand.New(rand.NewPCG(r.cfg.Seed, 0))
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.Sub(start) >= r.cfg.Duration || ctx.Err() != nil || r.full() {
			break
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		p, key := r.next(rng), r.key(rng)
		wg.Add(1)
		go func() { defer wg.Done(); r.place(ctx, p, at, key) }()
	}
	wg.Wait()
}

// settle waits until every accepted order has a final event (or, without
// NATS, a final status over HTTP) and returns how many never got one.
func (r *Runner) settle(ctx context.Context, haveEvents bool) int {
	begin := time.Now()
	deadline := begin.Add(r.cfg.SettleTimeout)
	var polled time.Time
	for {
		missing := r.missing()
		if len(missing) == 0 {
			return 0
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return len(missing)
		}
		// A final event can be missed (published while this connection
		// was reconnecting): after a few seconds, ask for the stragglers.
		if !haveEvents || (time.Since(begin) > 5*time.Second && time.Since(polled) > 2*time.Second) {
			r.pollStatuses(ctx, missing)
			polled = time.Now()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (r *Runner) missing() []*placed {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*placed
	for _, p := range r.orders {
		if _, ok := r.finals[p.id]; !ok {
			out = append(out, p)
		}
	}
	return out
}

// pollStatuses asks the order service for orders whose final event was not
// seen (a NATS reconnect during chaos can lose a live message).
func (r *Runner) pollStatuses(ctx context.Context, ps []*placed) {
	r.parallel(ps, func(p *placed) {
		var o api.Order
		code, err := r.do(ctx, http.MethodGet, r.orderURL(uint64(p.id[len(p.id)-1]))+"/orders/"+p.id, nil, nil, &o)
		if err == nil && code == http.StatusOK && o.Final() {
			r.mu.Lock()
			if _, ok := r.finals[p.id]; !ok {
				r.finals[p.id] = final{status: o.Status, at: time.Now(), polled: r.events}
			}
			r.mu.Unlock()
		}
	})
}

func (r *Runner) report(start time.Time, offered time.Duration, notFinal int) Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := Report{
		Mode: r.cfg.Mode, DurationSeconds: offered.Seconds(),
		Accepted: int(r.accepted.Load()), Rejected: int(r.refused.Load()), Retried: int(r.retried.Load()),
		Final: map[string]int{}, NotFinal: notFinal,
		PostLatency: r.postLat.Summarize(),
	}
	if r.cfg.Mode == "closed" {
		rep.Concurrency = r.cfg.Concurrency
	} else {
		rep.TargetRate = r.cfg.Rate
	}
	var e2e Latencies
	last := start
	for _, p := range r.orders {
		f, ok := r.finals[p.id]
		if !ok {
			continue
		}
		rep.Final[f.status]++
		if f.polled {
			// Its event was missed (this connection was reconnecting):
			// when it happened is unknown, so it is not a latency sample.
			rep.FinalByPoll++
			continue
		}
		e2e.Add(f.at.Sub(p.start))
		if f.at.After(last) {
			last = f.at
		}
	}
	rep.EndToEnd = e2e.Summarize()
	if span := last.Sub(start).Seconds(); span > 0 {
		rep.Throughput = float64(e2e.Len()) / span
		rep.ConfirmedPerS = float64(rep.Final["CONFIRMED"]) / span
	}
	return rep
}

// parallel runs f over ps with bounded concurrency.
func (r *Runner) parallel(ps []*placed, f func(*placed)) {
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, p := range ps {
		sem <- struct{}{}
		wg.Add(1)
		go func() { defer func() { <-sem; wg.Done() }(); f(p) }()
	}
	wg.Wait()
}

func (r *Runner) do(ctx context.Context, method, url string, body any, headers map[string]string, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: decode: %w", method, url, err)
		}
	}
	return resp.StatusCode, nil
}
