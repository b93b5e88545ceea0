package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/tools/chaos"
	"github.com/eventshop/tools/loadgen"
	"github.com/eventshop/tools/natsauth"
	"github.com/eventshop/tools/schemacompat"
	"github.com/eventshop/tools/stack"
	"github.com/eventshop/tools/upgrade"
)

// options are the flags beyond loadgen.Config.
type options struct {
	jsonOut    string
	selfHost   bool
	chaos      bool
	root       string
	dataDir    string
	portOffset int
	gap        time.Duration
	deadline   time.Duration
	dlqTimeout time.Duration
	instances  int
	nodes      int
	// -upgrade-from: the old revision, and its services in the order they
	// are upgraded (those start from the old build, the rest from this tree).
	upgradeFrom  string
	upgradeOrder []string
}

func run(ctx context.Context, args []string) (int, error) {
	c, o, err := parseFlags(args)
	if err != nil {
		return 2, err
	}
	if !o.selfHost {
		return drive(ctx, c, o, nil, "")
	}
	if o.root == "" {
		if o.root, err = stack.FindRoot(); err != nil {
			return 1, err
		}
	}
	local, old, cleanup, err := selfHost(ctx, &c, o)
	if err != nil {
		return 1, err
	}
	failed := true
	defer func() { cleanup(failed) }()
	var after func(context.Context, *loadgen.Report)
	switch {
	case o.chaos:
		if c.PostRetry == 0 {
			c.PostRetry = time.Minute
		}
		monkey, err := chaos.New(chaos.Config{
			Seed: c.Seed, Duration: c.Duration, Gap: o.gap, Services: local.Names(), NATSDown: natsDown(o.nodes),
			GatewayURL: c.GatewayURL, AdminToken: c.AdminToken, SlowLatency: 3 * time.Second,
			NATSURL: c.NATSURL, NATSUser: c.NATSUser, NATSPassword: c.NATSPassword,
		}, local, os.Stderr)
		if err != nil {
			return 1, err
		}
		defer monkey.Close()
		c.Disturb = monkey.Run
		after = chaosCheck(monkey, o.dlqTimeout, c.Check)
	case old != nil:
		// A POST to an order-service instance being replaced gets no
		// answer: loadgen retries it with its Idempotency-Key, as chaos does.
		if c.PostRetry == 0 {
			c.PostRetry = time.Minute
		}
		bins := map[string]string{}
		for _, svc := range o.upgradeOrder {
			bins[svc] = local.Built(svc)
		}
		up, err := upgrade.New(upgrade.Config{
			From: old.Rev, Order: o.upgradeOrder, Instances: o.instances, Bins: bins,
			// The last replacement three quarters into the load: the new
			// build alone takes the last quarter.
			Span: c.Duration * 3 / 4,
		}, local, os.Stderr)
		if err != nil {
			return 1, err
		}
		changed, err := changedVersions(o.root, old.Rev)
		if err != nil {
			return 1, err
		}
		fmt.Fprintf(os.Stderr, "loadgen: produced versions that change from %s to this tree: %v\n", old.Rev, changed)
		// Run's own context, not the load's: replacements late behind
		// their schedule still finish before the checks.
		c.Disturb = func(context.Context) { up.Run(ctx) }
		after = upgradeCheck(up, c, changed)
	}
	code, err := drive(ctx, c, o, after, local.LogFile("nats"))
	failed = code != 0
	return code, err
}

// parseFlags reads the command line into the load's configuration and the
// options around it, and checks the options that go together.
func parseFlags(args []string) (loadgen.Config, options, error) {
	var c loadgen.Config
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&c.OrderURL, "order-url", "http://127.0.0.1:8080", "order-service base URL")
	fs.StringVar(&c.InventoryURL, "inventory-url", "http://127.0.0.1:8081", "inventory-service base URL")
	fs.StringVar(&c.NotificationURL, "notification-url", "http://127.0.0.1:8083", "notification-service base URL (empty: skip its check)")
	fs.StringVar(&c.AuditURL, "audit-url", "http://127.0.0.1:8084", "audit-service base URL (empty: skip its check)")
	fs.StringVar(&c.GatewayURL, "gateway-url", "http://127.0.0.1:8090", "gateway simulator base URL (empty: skip the charge check)")
	fs.StringVar(&c.NATSURL, "nats-url", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS URL for final-event timestamps (empty: poll HTTP)")
	fs.StringVar(&c.NATSUser, "nats-user", os.Getenv("NATS_USER"), "NATS user (an operator account that may subscribe to orders.>)")
	fs.StringVar(&c.NATSPassword, "nats-password", os.Getenv("NATS_PASSWORD"), "NATS password")
	fs.StringVar(&c.AdminToken, "admin-token", os.Getenv("ADMIN_TOKEN"), "inventory admin token")
	fs.StringVar(&c.Mode, "mode", "closed", "closed (N in flight) or open (fixed rate)")
	fs.IntVar(&c.Concurrency, "concurrency", 16, "closed loop: orders in flight")
	fs.BoolVar(&c.UntilFinal, "until-final", false, "closed loop: keep each order in flight until its final event (whole sagas in flight), not only until POST answers")
	fs.Float64Var(&c.Rate, "rate", 100, "open loop: orders per second")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to offer load (and, with -chaos, to inject faults)")
	fs.IntVar(&c.MaxOrders, "orders", 0, "stop after this many accepted orders (0: none)")
	fs.IntVar(&c.SKUs, "skus", 20, "catalogue size")
	fs.Float64Var(&c.HotShare, "hot", 0.2, "share of lines on the hot SKU")
	fs.Float64Var(&c.DeclineShare, "declined", 0.05, "share of orders with a declined card")
	fs.Float64Var(&c.UnknownShare, "unknown", 0.02, "share of orders naming an unknown SKU")
	fs.BoolVar(&c.Check, "check", true, "check the business invariants at the end")
	fs.DurationVar(&c.SettleTimeout, "settle", 2*time.Minute, "how long to wait for every order to reach a final state")
	fs.Uint64Var(&c.Seed, "seed", 0, "random seed of the order mix and the chaos plan (0: from the clock; printed)")
	fs.DurationVar(&c.PostRetry, "post-retry", 0, "retry an unanswered POST /orders with its Idempotency-Key this long (-chaos: 60s)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the report as JSON to this file")
	fs.BoolVar(&o.selfHost, "stack", false, "run the system here: build it, start an embedded nats-server and every service (the URL and NATS flags are ignored)")
	fs.BoolVar(&o.chaos, "chaos", false, "disturb the system while the load runs (implies -stack): kill services, gateway outages, NATS restarts, duplicate and poison events")
	fs.StringVar(&o.root, "root", "", "-stack: repository root holding go.work (default: search upwards)")
	fs.StringVar(&o.dataDir, "data", "", "-stack: data directory (NATS store, logs, binaries; default: a temporary one, removed after a clean run)")
	fs.IntVar(&o.portOffset, "port-offset", 0, "-stack: add this to every default port (services 8080-8084, gateway 8090, NATS 4222 and 8222)")
	fs.DurationVar(&o.gap, "chaos-gap", 3*time.Second, "-chaos: mean quiet time between two faults")
	fs.DurationVar(&o.deadline, "order-deadline", 30*time.Second, "-stack: the order service's ORDER_DEADLINE")
	fs.IntVar(&o.instances, "instances", 1, "-stack: processes per service (they share the durable consumers; POSTs go to each order-service in turn)")
	fs.IntVar(&o.nodes, "nats-nodes", 1, "-stack: nats-servers routed into one cluster (streams get min(n,3) replicas; -chaos then stops one node at a time)")
	fs.DurationVar(&o.dlqTimeout, "dlq-timeout", time.Minute, "-chaos: how long to wait for the dead letters to match the poison")
	fs.StringVar(&o.upgradeFrom, "upgrade-from", "", "rolling upgrade: start the services from this git revision (implies -stack; -instances defaults to 2), and while the load runs replace every instance by this tree's build, one at a time; also checks that the audit trail holds an event type in two schema versions")
	order := fs.String("upgrade-order", strings.Join(upgrade.DefaultOrder, ","), "-upgrade-from: the services to upgrade, in order (consumers of the changed events first, the producer last); the others start from this tree")
	if err := fs.Parse(args); err != nil {
		return c, o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case o.upgradeFrom != "" && o.chaos:
		return c, o, errors.New("-upgrade-from and -chaos do not combine: a rolling upgrade runs without faults (and wants no dead letters)")
	case o.upgradeFrom != "":
		if !set["instances"] {
			o.instances = 2
		}
		if o.instances < 2 {
			return c, o, fmt.Errorf("-upgrade-from needs -instances 2 or more: one instance of a service serves while the other is replaced (got %d)", o.instances)
		}
		var err error
		if o.upgradeOrder, err = upgrade.ParseOrder(*order); err != nil {
			return c, o, fmt.Errorf("-upgrade-order: %w", err)
		}
		o.selfHost = true
	case set["upgrade-order"]:
		return c, o, errors.New("-upgrade-order needs -upgrade-from")
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	o.selfHost = o.selfHost || o.chaos
	return c, o, nil
}

// chaosCheck returns what drive does after a chaos run: the dead letters
// must be exactly the poison, and every fault action must have worked.
func chaosCheck(monkey *chaos.Monkey, dlqTimeout time.Duration, check bool) func(context.Context, *loadgen.Report) {
	return func(ctx context.Context, rep *loadgen.Report) {
		if check {
			for _, v := range monkey.Check(ctx, dlqTimeout) {
				rep.Violations = append(rep.Violations, "dead letters: "+v)
			}
		}
		s := monkey.Summary()
		rep.Chaos = &s
		if s.Errors > 0 {
			rep.Violations = append(rep.Violations, fmt.Sprintf("chaos: %d fault actions failed (see the chaos log); the run proves less than planned", s.Errors))
		}
	}
}

// upgradeCheck returns what drive does after a rolling upgrade: every
// step worked and every process runs the new build; the audit trail's
// schema versions are counted, and some event type must appear in two
// (else the upgrade crossed no schema change); and no message was
// dead-lettered (nothing was injected: an old consumer refusing a new
// event, or the reverse, would show there).
func upgradeCheck(up *upgrade.Rolling, c loadgen.Config, changed []string) func(context.Context, *loadgen.Report) {
	return func(ctx context.Context, rep *loadgen.Report) {
		fail := func(v ...string) {
			if c.Check {
				rep.Violations = append(rep.Violations, v...)
			}
		}
		fail(up.Check()...)
		s := up.Summary()
		rep.Upgrade = &s
		nc, err := nats.Connect(c.NATSURL, nats.Name("loadgen-upgrade"), nats.UserInfo(c.NATSUser, c.NATSPassword))
		if err != nil {
			fail(fmt.Sprintf("upgrade: connect to nats: %v", err))
			return
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			fail(fmt.Sprintf("upgrade: %v", err))
			return
		}
		versions, err := loadgen.AuditVersions(ctx, js)
		if err != nil {
			fail(fmt.Sprintf("upgrade: %v", err))
		} else {
			rep.AuditVersions = versions
			fail(versions.Check(changed)...)
		}
		durables, err := chaos.ReadDurables(ctx, js, chaos.DomainStreams)
		if err != nil {
			fail(fmt.Sprintf("dead letters: %v", err))
			return
		}
		letters, messages, err := chaos.ReadLetters(ctx, js)
		if err != nil {
			fail(fmt.Sprintf("dead letters: %v", err))
			return
		}
		for _, v := range chaos.CompareDeadLetters(nil, durables, letters, messages) {
			fail("dead letters: " + v)
		}
	}
}

// changedVersions lists the event types whose produced version differs
// between the old revision and this tree (shared/events/contract.json).
func changedVersions(root, oldRev string) ([]string, error) {
	before, err := schemacompat.ProducedAt(root, oldRev)
	if err != nil {
		return nil, fmt.Errorf("the versions %s produces: %w", oldRev, err)
	}
	now, err := schemacompat.ProducedAt(root, "")
	if err != nil {
		return nil, fmt.Errorf("the versions this tree produces: %w", err)
	}
	var out []string
	for t, v := range now {
		if before[t] != v {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out, nil
}

// drive runs the load (and what disturbs it), checks, and reports. after,
// if set, adds the checks of what disturbed the load (chaos, an upgrade).
// natsLog, if set, is the server's log, where a refused operation shows.
func drive(ctx context.Context, c loadgen.Config, o options, after func(context.Context, *loadgen.Report), natsLog string) (int, error) {
	fmt.Fprintf(os.Stderr, "loadgen: seed %d\n", c.Seed)
	r, err := loadgen.New(c, os.Stderr)
	if err != nil {
		return 2, err
	}
	rep, err := r.Run(ctx)
	if err != nil {
		return 1, err
	}
	if after != nil {
		after(ctx, &rep)
	}
	if natsLog != "" {
		v, err := permissionViolations(natsLog)
		if err != nil {
			return 1, err
		}
		rep.Violations = append(rep.Violations, v...)
	}
	if rep.Accepted == 0 {
		rep.Violations = append(rep.Violations, "no order was accepted")
	}
	fmt.Print(rep.Text())
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return 1, err
		}
		if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			return 1, err
		}
	}
	if len(rep.Violations) > 0 || rep.NotFinal > 0 {
		return 1, fmt.Errorf("%d invariant violations, %d orders not final", len(rep.Violations), rep.NotFinal)
	}
	return 0, nil
}

// natsDown is the longest NATS outage of a chaos run: a single server is
// down briefly (every client waits for it), a cluster node long enough for
// its streams to elect new leaders and for it to fall behind.
func natsDown(nodes int) time.Duration {
	if nodes > 1 {
		return 12 * time.Second
	}
	return 2 * time.Second
}

// selfHost starts the whole system of the repository at o.root on this
// machine and points c at it; with -upgrade-from, the services of
// o.upgradeOrder from the old revision, built first (old). cleanup stops it
// and removes a temporary data directory unless the run failed.
func selfHost(ctx context.Context, c *loadgen.Config, o options) (local *stack.Local, old *stack.Revision, cleanup func(failed bool), err error) {
	root := o.root
	dir, temp := o.dataDir, false
	if dir == "" {
		d, err := os.MkdirTemp("", "eventshop-loadgen-")
		if err != nil {
			return nil, nil, nil, err
		}
		dir, temp = d, true
	}
	var oldBins map[string]string
	if o.upgradeFrom != "" {
		// First: an unknown revision fails before the long build of this tree.
		rev, err := stack.BuildRevision(ctx, root, o.upgradeFrom, filepath.Join(dir, "old"), os.Stderr)
		if err != nil {
			if temp {
				os.RemoveAll(dir)
			}
			return nil, nil, nil, fmt.Errorf("-upgrade-from: %w", err)
		}
		old, oldBins = &rev, map[string]string{}
		for _, svc := range o.upgradeOrder {
			oldBins[svc] = rev.Bins[svc]
		}
		fmt.Fprintf(os.Stderr, "loadgen: %s start from %s (%s); the rest and the gateway simulator from %s\n",
			strings.Join(o.upgradeOrder, ", "), rev.Rev, rev.Short(), root)
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	c.AdminToken = hex.EncodeToString(b)
	pw := natsauth.NewPasswords(func(string) string { return "" })
	fmt.Fprintf(os.Stderr, "loadgen: building and starting the system in %s (port offset %d) ...\n", dir, o.portOffset)
	start := time.Now()
	local, err = stack.StartLocal(ctx, stack.LocalConfig{
		Root: root, Dir: dir, PortOffset: o.portOffset, AdminToken: c.AdminToken, Passwords: pw, Out: os.Stderr,
		Instances: o.instances, Nodes: o.nodes, Bins: oldBins,
		Env: []string{
			"ORDER_DEADLINE=" + o.deadline.String(),
			// Short outages and timeouts, so chaos exercises the breaker and
			// the replays of a charge whose answer was lost.
			"GATEWAY_TIMEOUT=2s", "BREAKER_FAILURE_THRESHOLD=3", "BREAKER_OPEN_TIMEOUT=1s",
			"SHUTDOWN_TIMEOUT=10s",
		},
	})
	if err != nil {
		if temp {
			err = errors.Join(err, fmt.Errorf("logs kept in %s", dir))
		}
		return nil, nil, nil, err
	}
	fmt.Fprintf(os.Stderr, "loadgen: system ready in %s; logs in %s\n", time.Since(start).Round(time.Millisecond), dir+"/logs")
	c.OrderURL = local.URL("order-service")
	for k := 2; k <= o.instances; k++ {
		c.MoreOrderURLs = append(c.MoreOrderURLs, local.URL(fmt.Sprintf("order-service-%d", k)))
	}
	c.InventoryURL = local.URL("inventory-service")
	c.NotificationURL = local.URL("notification-service")
	c.AuditURL = local.URL("audit-service")
	c.GatewayURL = local.URL("payment-gateway")
	c.NATSURL = local.ClientURLs()
	c.NATSUser, c.NATSPassword = natsauth.Admin, pw[natsauth.Admin]
	cleanup = func(failed bool) {
		local.Stop()
		switch {
		case failed:
			fmt.Fprintf(os.Stderr, "loadgen: run failed; logs and NATS store kept in %s\n", dir)
		case temp:
			if err := os.RemoveAll(dir); err != nil {
				fmt.Fprintf(os.Stderr, "loadgen: remove %s: %v\n", dir, err)
			}
		}
	}
	return local, old, cleanup, nil
}

// permissionViolations returns the nats-server log lines reporting a
// refused publish or subscribe: a denied operation can hide behind
// retries, and none may happen.
func permissionViolations(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read the nats-server log: %w", err)
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, "Publish Violation") || strings.Contains(line, "Subscription Violation") {
			out = append(out, "nats-server refused: "+strings.TrimSpace(line))
		}
	}
	return out, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
