// Package bench runs the system's benchmark: the whole system on its
// embedded default (devstack: one nats-server with file storage, every
// service and the audit trail as OS processes), driven by the load
// generator over its public HTTP API, under each JetStream fsync setting.
// It measures the sustained confirmed orders per second, latency at fixed
// offered rates, the CPU and peak memory of every process, how long a
// gateway outage's backlog takes to drain, the broker's work per order,
// and the raw capacity of the broker (nats bench) for scale.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/eventshop/tools/loadgen"
	"github.com/eventshop/tools/stack"
)

// Config is what to run.
type Config struct {
	Root        string        // repository root (go.work)
	WorkDir     string        // binaries, data and logs of the runs
	PortOffset  int           // added to every default port
	Syncs       []string      // JetStream fsync settings: "default", "always"
	MaxLoad     time.Duration // closed-loop run measuring the sustained maximum
	MaxInFlight int           // orders in flight in that run
	Rates       []float64     // open-loop rates, orders per second
	RateLoad    time.Duration // each open-loop run
	Outage      time.Duration // gateway outage (0: skip)
	OutageRate  float64       // orders per second offered during the outage
	NatsCLI     string        // path of the nats CLI for the broker's raw capacity ("" skips it)
	// Tracing lists sampling settings ("off", or a ratio such as "0.1")
	// for which the closed loop runs again with the default fsync, the
	// services exporting to a Jaeger beside them: what tracing costs.
	Tracing []string
	Log     io.Writer
}

// Scenario is one load run and what the processes used during it.
type Scenario struct {
	Name   string             `json:"name"`
	Report loadgen.Report     `json:"report"`
	CPU    map[string]float64 `json:"cpu_cores"` // mean cores used per process over the run
	// CPUPerOrderMs is each process's CPU time over the run (load, drain
	// and invariant check) divided by the orders accepted: the work one
	// order costs it.
	CPUPerOrderMs map[string]float64 `json:"cpu_ms_per_order"`
	Broker        Broker             `json:"broker"`
	// DrainSeconds: outage scenario, from the gateway's recovery to the
	// last order's final event.
	DrainSeconds float64 `json:"drain_s,omitempty"`
}

// Result is one fsync setting's runs.
type Result struct {
	Sync string `json:"sync"`
	// Tracing is the sampling of a tracing run ("off" or a ratio; empty:
	// not a tracing run, the services export nothing).
	Tracing   string             `json:"tracing,omitempty"`
	Scenarios []Scenario         `json:"scenarios"`
	PeakRSSMB map[string]float64 `json:"peak_rss_mb"` // over all its runs
	Raw       []RawBench         `json:"nats_bench,omitempty"`
}

// Run runs every fsync setting in turn, each on a fresh system.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	bin := filepath.Join(cfg.WorkDir, "devstack")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./tools/cmd/devstack")
	build.Dir, build.Stdout, build.Stderr = cfg.Root, cfg.Log, cfg.Log
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build devstack: %w", err)
	}
	var out []Result
	for _, sync := range cfg.Syncs {
		r, err := runSync(ctx, cfg, bin, sync, variant{})
		if err != nil {
			return out, fmt.Errorf("sync %s: %w", sync, err)
		}
		out = append(out, r)
	}
	if len(cfg.Tracing) > 0 {
		rs, err := runTracing(ctx, cfg, bin)
		out = append(out, rs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// variant is a run of one fsync setting with tracing (only the closed
// loop is measured then).
type variant struct {
	tracing string
	jaeger  *jaeger
}

const (
	adminToken = "bench-admin-token"
	adminPass  = "bench-admin-password"
)

func (c Config) url(port int) string { return fmt.Sprintf("http://127.0.0.1:%d", port+c.PortOffset) }

func runSync(ctx context.Context, cfg Config, devstack, sync string, v variant) (Result, error) {
	res := Result{Sync: sync, Tracing: v.tracing, PeakRSSMB: map[string]float64{}}
	name := sync
	var env []string
	if v.tracing != "" {
		name += "-tracing-" + v.tracing
		env = tracingEnv(v.tracing, v.jaeger.endpoint)
	}
	data := filepath.Join(cfg.WorkDir, "data-"+name)
	if err := os.RemoveAll(data); err != nil {
		return res, err
	}
	sys, err := startSystem(ctx, cfg, devstack, data, sync, name, env)
	if err != nil {
		return res, err
	}
	defer sys.stop()

	base := loadgen.Config{
		OrderURL: cfg.url(8080), InventoryURL: cfg.url(8081), NotificationURL: cfg.url(8083),
		AuditURL: cfg.url(8084), GatewayURL: cfg.url(8090),
		NATSURL:  fmt.Sprintf("nats://127.0.0.1:%d", 4222+cfg.PortOffset),
		NATSUser: "admin", NATSPassword: adminPass, AdminToken: adminToken,
		SKUs: 200, HotShare: 0.1, DeclineShare: 0.02, UnknownShare: 0.01,
		SettleTimeout: 5 * time.Minute, PostRetry: 10 * time.Second,
	}
	label := sync
	if v.tracing != "" {
		label += ", tracing " + v.tracing
	}
	if v.jaeger != nil {
		pid, err := v.jaeger.pid()
		if err != nil {
			return res, err
		}
		sys.extra = map[string]int{jaegerName: pid}
	}
	run := func(name string, lc loadgen.Config, disturb func(context.Context) time.Time) (Scenario, error) {
		fmt.Fprintf(cfg.Log, "bench[%s]: %s\n", label, name)
		before, err := sys.usage()
		if err != nil {
			return Scenario{}, err
		}
		js0, err := readBroker(ctx, cfg)
		if err != nil {
			return Scenario{}, err
		}
		var recovered time.Time
		if disturb != nil {
			lc.Disturb = func(ctx context.Context) { recovered = disturb(ctx) }
		}
		lc.Seed = uint64(time.Now().UnixNano())
		r, err := loadgen.New(lc, cfg.Log)
		if err != nil {
			return Scenario{}, err
		}
		start := time.Now()
		rep, err := r.Run(ctx)
		if err != nil {
			return Scenario{}, err
		}
		settled := time.Now()
		after, err := sys.usage()
		if err != nil {
			return Scenario{}, err
		}
		js1, err := readBroker(ctx, cfg)
		if err != nil {
			return Scenario{}, err
		}
		sc := Scenario{Name: name, Report: rep, CPU: map[string]float64{}, CPUPerOrderMs: map[string]float64{}}
		wall := settled.Sub(start).Seconds()
		for name, u := range after {
			used := (u.CPU - before[name].CPU).Seconds()
			sc.CPU[name] = used / wall
			if rep.Accepted > 0 {
				sc.CPUPerOrderMs[name] = 1000 * used / float64(rep.Accepted)
			}
			res.PeakRSSMB[name] = max(res.PeakRSSMB[name], float64(u.PeakRSS)/(1<<20))
		}
		sc.Broker = js1.perOrder(js0, rep.Accepted)
		if !recovered.IsZero() {
			sc.DrainSeconds = r.LastFinal().Sub(recovered).Seconds()
		}
		fmt.Fprint(cfg.Log, rep.Text())
		// A violation is reported in the results, not fatal: under an
		// overload the load generator gives up on POSTs that the order
		// service may still have taken, and the figures must still say
		// so. The tests and make chaos are where violations fail.
		if len(rep.Violations) > 0 || rep.NotFinal > 0 {
			fmt.Fprintf(cfg.Log, "bench: %s: %d invariant violations, %d orders not final\n", name, len(rep.Violations), rep.NotFinal)
		}
		return sc, nil
	}

	// Warm up (JIT-free Go, but connections, file handles and the
	// catalogue), not reported.
	warm := base
	warm.Mode, warm.Concurrency, warm.Duration, warm.UntilFinal = "closed", 16, 5*time.Second, true
	if _, err := run("warm-up", warm, nil); err != nil {
		return res, err
	}
	maxRun := base
	maxRun.Mode, maxRun.Concurrency, maxRun.Duration, maxRun.Check = "closed", cfg.MaxInFlight, cfg.MaxLoad, true
	maxRun.UntilFinal = true // whole sagas in flight: the rate the system sustains end to end
	sc, err := run(fmt.Sprintf("closed loop, %d sagas in flight", cfg.MaxInFlight), maxRun, nil)
	if err != nil {
		return res, err
	}
	res.Scenarios = append(res.Scenarios, sc)
	if v.tracing != "" {
		return res, nil // what tracing costs: the sustained rate and the CPU per order
	}
	for _, rate := range cfg.Rates {
		lc := base
		lc.Mode, lc.Rate, lc.Duration, lc.Check = "open", rate, cfg.RateLoad, true
		sc, err := run(fmt.Sprintf("open loop, %.0f orders/s", rate), lc, nil)
		if err != nil {
			return res, err
		}
		res.Scenarios = append(res.Scenarios, sc)
	}
	if cfg.Outage > 0 {
		lc := base
		lc.Mode, lc.Rate, lc.Duration, lc.Check = "open", cfg.OutageRate, cfg.Outage, true
		gw := cfg.url(8090)
		sc, err := run(fmt.Sprintf("gateway down %s at %.0f orders/s, then up", cfg.Outage, cfg.OutageRate), lc,
			func(ctx context.Context) time.Time {
				if err := setGateway(gw, "down"); err != nil {
					fmt.Fprintln(cfg.Log, "bench: gateway down:", err)
				}
				<-ctx.Done()
				if err := setGateway(gw, "healthy"); err != nil {
					fmt.Fprintln(cfg.Log, "bench: gateway up:", err)
				}
				return time.Now()
			})
		if err != nil {
			return res, err
		}
		res.Scenarios = append(res.Scenarios, sc)
	}
	if cfg.NatsCLI != "" {
		raw, err := natsBench(ctx, cfg)
		if err != nil {
			return res, err
		}
		res.Raw = raw
	}
	return res, nil
}

// setGateway switches the simulator's mode; /admin/mode needs the admin
// token the stack was started with.
func setGateway(base, mode string) error {
	req, err := http.NewRequest(http.MethodPut, base+"/admin/mode", strings.NewReader(`{"mode":"`+mode+`"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s/admin/mode = %d", base, resp.StatusCode)
	}
	return nil
}

// system is devstack running as a child process: the embedded nats-server
// lives in the devstack process, every service in a child of it. Not
// stack.StartLocal, which embeds the server in the caller: here the broker's
// CPU and memory must be read apart from the load generator's.
type system struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
	// extra: processes beside the system whose use is read with it.
	extra map[string]int
}

// startSystem starts devstack (named name in its log's file name) with the
// fsync setting sync and env added to its environment.
func startSystem(ctx context.Context, cfg Config, bin, data, sync, name string, env []string) (*system, error) {
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(cfg.WorkDir, "devstack-"+name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-root", cfg.Root, "-data", data, "-port-offset", fmt.Sprint(cfg.PortOffset), "-nats-sync", sync)
	cmd.Env = append(append(os.Environ(), "ADMIN_TOKEN="+adminToken, "NATS_PASSWORD_ADMIN="+adminPass, "LOG_LEVEL=warn"), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start devstack: %w", err)
	}
	s := &system{cmd: cmd, done: make(chan struct{}), log: logf}
	go func() { _ = cmd.Wait(); close(s.done) }()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for _, spec := range stack.Specs {
		if err := stack.WaitReady(rctx, spec.ReadyURL(cfg.PortOffset)); err != nil {
			s.stop()
			return nil, fmt.Errorf("%s: %w (see %s)", spec.Name, err, logf.Name())
		}
	}
	return s, nil
}

func (s *system) stop() {
	terminate(s.cmd.Process.Pid, s.done, 40*time.Second) // devstack stops its children
	s.log.Close()
}

// terminate sends SIGTERM to target (a process, or a process group as a
// negative id) and waits for done; after grace it kills the whole group.
func terminate(target int, done <-chan struct{}, grace time.Duration) {
	_ = syscall.Kill(target, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		group := target
		if group > 0 {
			group = -group
		}
		_ = syscall.Kill(group, syscall.SIGKILL)
		<-done
	}
}

// usage reads every process of the system: devstack itself (which is the
// nats-server) and its children.
func (s *system) usage() (map[string]Usage, error) {
	pid := s.cmd.Process.Pid
	kids, err := children("/proc", pid)
	if err != nil {
		return nil, err
	}
	kids["nats-server (in devstack)"] = pid
	for name, p := range s.extra {
		kids[name] = p
	}
	out := map[string]Usage{}
	for name, p := range kids {
		u, err := readUsage("/proc", p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = u
	}
	if len(out) < len(stack.Specs)+1+len(s.extra) {
		return out, errors.New("some processes of the system are missing")
	}
	return out, nil
}

// Broker is the broker's work per accepted order, from the server's own
// counters (monitoring endpoint).
type Broker struct {
	StreamWrites float64            `json:"stream_writes"` // messages stored, events and KV entries
	APICalls     float64            `json:"api_calls"`     // JetStream API requests (incl. direct gets)
	MsgsIn       float64            `json:"msgs_in"`       // every message clients sent: publishes, acks, requests
	MsgsOut      float64            `json:"msgs_out"`      // every message delivered to clients
	BytesStored  float64            `json:"bytes_stored"`
	PerStream    map[string]float64 `json:"per_stream_writes"`
}

type brokerSample struct {
	lastSeq         map[string]uint64
	bytes           uint64
	api             uint64
	inMsgs, outMsgs uint64
}

func (b brokerSample) perOrder(before brokerSample, orders int) Broker {
	out := Broker{PerStream: map[string]float64{}}
	if orders == 0 {
		return out
	}
	n := float64(orders)
	var writes uint64
	for name, seq := range b.lastSeq {
		d := seq - before.lastSeq[name]
		writes += d
		if d > 0 {
			out.PerStream[name] = float64(d) / n
		}
	}
	out.StreamWrites = float64(writes) / n
	out.APICalls = float64(b.api-before.api) / n
	out.MsgsIn = float64(b.inMsgs-before.inMsgs) / n
	out.MsgsOut = float64(b.outMsgs-before.outMsgs) / n
	out.BytesStored = float64(b.bytes-before.bytes) / n
	return out
}

func readBroker(ctx context.Context, cfg Config) (brokerSample, error) {
	var jsz struct {
		Bytes uint64 `json:"bytes"`
		API   struct {
			Total uint64 `json:"total"`
		} `json:"api"`
		Accounts []struct {
			Streams []struct {
				Name  string `json:"name"`
				State struct {
					LastSeq uint64 `json:"last_seq"`
				} `json:"state"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	mon := cfg.url(8222)
	if err := getJSON(ctx, mon+"/jsz?accounts=true&streams=true", &jsz); err != nil {
		return brokerSample{}, err
	}
	var varz struct {
		InMsgs  uint64 `json:"in_msgs"`
		OutMsgs uint64 `json:"out_msgs"`
	}
	if err := getJSON(ctx, mon+"/varz", &varz); err != nil {
		return brokerSample{}, err
	}
	s := brokerSample{lastSeq: map[string]uint64{}, bytes: jsz.Bytes, api: jsz.API.Total, inMsgs: varz.InMsgs, outMsgs: varz.OutMsgs}
	for _, a := range jsz.Accounts {
		for _, st := range a.Streams {
			s.lastSeq[st.Name] = st.State.LastSeq
		}
	}
	return s, nil
}

func getJSON(ctx context.Context, url string, v any) error {
	return call(ctx, http.MethodGet, url, "", v)
}

// call sends a request with an optional JSON body and decodes a 200 answer
// into out (when not nil).
func call(ctx context.Context, method, url, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s = %d", method, url, resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
