package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/eventshop/tools/natsauth"
)

// ErrUnknownProcess is returned for a name that is not one of Specs.
var ErrUnknownProcess = errors.New("unknown process")

// LocalConfig says how to run a whole system on this machine.
type LocalConfig struct {
	Root       string             // repository root (go.work)
	Dir        string             // holds bin/, logs/ and nats/ (the JetStream store)
	PortOffset int                // added to every default port (services, gateway, NATS 4222, monitoring 8222)
	AdminToken string             // every service's ADMIN_TOKEN
	Passwords  natsauth.Passwords // one per NATS user
	Env        []string           // extra environment for every process (e.g. ORDER_DEADLINE=30s)
	// Nodes is how many nats-servers run, routed into one cluster (the
	// streams then have that many replicas, up to 3), with the first on
	// the ports above and the k-th on client port 4222+10*(k-1). 0 means 1.
	// In a cluster StopNATS stops one node at a time, in turn.
	Nodes int
	// Instances is how many processes run each service (not the gateway
	// simulator): the first is named and placed as its Spec says, the k-th
	// is "<name>-k" on the Spec's port + InstancePortStep*(k-1). They share
	// the durable consumers, as the replicas of a deployment do. 0 means 1.
	Instances int
	// Bins runs some programs from other binaries than the ones built
	// from Root, by program name (a Spec's Name), for example the
	// services of an older release (BuildRevision) to upgrade with
	// Replace. Every instance of such a program starts from it.
	Bins map[string]string
	// StopGrace is how long Stop and Replace wait after SIGTERM before
	// they SIGKILL; 0 means 20s.
	StopGrace time.Duration
	Out       io.Writer // build output and progress
}

// stopGrace returns StopGrace or its default.
func (cfg LocalConfig) stopGrace() time.Duration {
	if cfg.StopGrace > 0 {
		return cfg.StopGrace
	}
	return 20 * time.Second
}

// Local is a whole system running on this machine: an embedded nats-server
// with the production configuration and every program of Specs as its own
// OS process, logging to Dir/logs.
type Local struct {
	NATS  *NATS   // the first node
	Nodes []*NATS // every node; NATS alone unless LocalConfig.Nodes > 1
	cfg   LocalConfig
	stops int               // StopNATS calls: which node is next
	built map[string]string // the binaries built from Root, by program
	mu    sync.Mutex
	procs map[string]*Process
	specs []instance
	logs  []*os.File
}

// StartLocal builds the binaries, starts NATS and every program (from
// LocalConfig.Bins where it names one), and waits until each is ready.
func StartLocal(ctx context.Context, cfg LocalConfig) (*Local, error) {
	for program, bin := range cfg.Bins {
		if !slices.ContainsFunc(Specs, func(s Spec) bool { return s.Name == program }) {
			return nil, fmt.Errorf("binary %s for %q: %w", bin, program, ErrUnknownProcess)
		}
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("binary for %s: %w", program, err)
		}
	}
	for _, d := range []string{"bin", "logs", "nats"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	bins, err := Build(ctx, cfg.Root, filepath.Join(cfg.Dir, "bin"), cfg.Out)
	if err != nil {
		return nil, err
	}
	nodes, err := startNodes(cfg)
	if err != nil {
		return nil, err
	}
	l := &Local{NATS: nodes[0], Nodes: nodes, cfg: cfg, built: bins, procs: map[string]*Process{}, specs: cfg.instances()}
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.ClientURL()
	}
	natsURL := strings.Join(urls, ",")
	if len(nodes) > 1 {
		cfg.Env = append(cfg.Env, "STREAM_REPLICAS="+strconv.Itoa(min(len(nodes), 3)))
	}
	for _, s := range l.specs {
		f, err := os.OpenFile(l.LogFile(s.Name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			l.Stop()
			return nil, err
		}
		l.logs = append(l.logs, f)
		env := append(s.Env(natsURL, cfg.PortOffset, cfg.AdminToken), cfg.Env...)
		// The OTEL_* settings (tracing) pass through from this environment
		// (Process inherits it); only the service name is each program's.
		env = append(env, "OTEL_SERVICE_NAME="+s.Program)
		if creds, err := cfg.Passwords.ClientEnv(s.Program); err == nil { // the gateway simulator does not use NATS
			env = append(env, creds...)
		}
		bin := bins[s.Program]
		if b, ok := cfg.Bins[s.Program]; ok {
			bin = b
		}
		p := &Process{Name: s.Name, Bin: bin, Log: f, Env: env}
		if err := p.Start(); err != nil {
			l.Stop()
			return nil, err
		}
		l.procs[s.Name] = p
	}
	readyCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for _, s := range l.specs {
		if err := WaitReady(readyCtx, s.ReadyURL(cfg.PortOffset)); err != nil {
			l.Stop()
			return nil, fmt.Errorf("%s: %w (see %s)", s.Name, err, l.LogFile(s.Name))
		}
	}
	return l, nil
}

// InstancePortStep separates the HTTP ports of a service's instances.
const InstancePortStep = 100

// InstanceName returns the name of the k-th instance (from 1) of a
// program: the program's name for the first, "<name>-<k>" for the others.
func InstanceName(program string, k int) string {
	if k <= 1 {
		return program
	}
	return program + "-" + strconv.Itoa(k)
}

// instance is one process of a Spec.
type instance struct {
	Spec
	Program string // the Spec's name: its binary and NATS user
}

// instances lists the processes to run: every Spec, a service Instances
// times.
func (cfg LocalConfig) instances() []instance {
	var out []instance
	for _, s := range Specs {
		out = append(out, instance{Spec: s, Program: s.Name})
	}
	for k := 2; k <= cfg.Instances; k++ {
		for _, s := range Specs {
			if s.Name == "payment-gateway" {
				continue
			}
			i := instance{Spec: s, Program: s.Name}
			i.Name = InstanceName(s.Name, k)
			i.Port = s.Port + InstancePortStep*(k-1)
			out = append(out, i)
		}
	}
	return out
}

// Names returns the name of every running program but the gateway
// simulator: each service instance.
func (l *Local) Names() []string {
	var out []string
	for _, s := range l.specs {
		if s.Program != "payment-gateway" {
			out = append(out, s.Name)
		}
	}
	return out
}

// LogFile returns the log file of the named program ("nats" for the server).
func (l *Local) LogFile(name string) string {
	return filepath.Join(l.cfg.Dir, "logs", name+".log")
}

// URL returns the base URL of the named program (or instance).
func (l *Local) URL(name string) string {
	for _, s := range l.specs {
		if s.Name == name {
			return s.URL(l.cfg.PortOffset)
		}
	}
	return ""
}

// MonitorURL returns the base URL of the NATS monitoring endpoint.
func (l *Local) MonitorURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(8222+l.cfg.PortOffset)
}

func (l *Local) proc(name string) (*Process, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.procs[name]
	if !ok {
		return nil, fmt.Errorf("%q: %w", name, ErrUnknownProcess)
	}
	return p, nil
}

// Kill SIGKILLs the named program and waits for it to die.
func (l *Local) Kill(name string) error {
	p, err := l.proc(name)
	if err != nil {
		return err
	}
	return p.Kill()
}

// Start starts the named program again if it is not running.
func (l *Local) Start(name string) error {
	p, err := l.proc(name)
	if err != nil {
		return err
	}
	if p.Running() {
		return nil
	}
	return p.Start()
}

// Running reports whether the named program is running.
func (l *Local) Running(name string) bool {
	p, err := l.proc(name)
	return err == nil && p.Running()
}

// Stop stops every program (SIGTERM, then SIGKILL after StopGrace), then
// NATS.
func (l *Local) Stop() {
	l.mu.Lock()
	procs := make([]*Process, 0, len(l.procs))
	for _, p := range l.procs {
		procs = append(procs, p)
	}
	l.mu.Unlock()
	StopAll(procs, l.cfg.stopGrace(), func(name string, err error) {
		if l.cfg.Out != nil {
			fmt.Fprintf(l.cfg.Out, "stack: stop %s: %v\n", name, err)
		}
	})
	for _, n := range l.Nodes {
		n.Shutdown()
	}
	for _, f := range l.logs {
		f.Close()
	}
}

// StopNATS shuts the NATS server down, as a crash of its process would; in
// a cluster, one node, each in turn.
func (l *Local) StopNATS() {
	l.mu.Lock()
	n := l.Nodes[l.stops%len(l.Nodes)]
	l.stops++
	l.mu.Unlock()
	n.Shutdown()
}

// StartNATS starts every stopped NATS server again on the same ports and
// store.
func (l *Local) StartNATS() error {
	var errs []error
	for _, n := range l.Nodes {
		errs = append(errs, n.Start())
	}
	return errors.Join(errs...)
}

// ClientURLs returns the client URLs of every NATS node, comma-separated,
// as the services' NATS_URL holds them.
func (l *Local) ClientURLs() string {
	urls := make([]string, len(l.Nodes))
	for i, n := range l.Nodes {
		urls[i] = n.ClientURL()
	}
	return strings.Join(urls, ",")
}

// startNodes starts the NATS server, or cfg.Nodes of them routed into a
// cluster with a route password of their own. Every node logs to
// logs/nats.log.
func startNodes(cfg LocalConfig) ([]*NATS, error) {
	n := max(cfg.Nodes, 1)
	var routes []*url.URL
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	routePassword := hex.EncodeToString(b)
	for k := range n {
		routes = append(routes, &url.URL{Scheme: "nats", User: url.UserPassword("route", routePassword), Host: "127.0.0.1:" + strconv.Itoa(6222+cfg.PortOffset+k)})
	}
	var nodes []*NATS
	for k := range n {
		dir := filepath.Join(cfg.Dir, "nats")
		httpPort := 8222 + cfg.PortOffset
		if n > 1 {
			dir = filepath.Join(dir, fmt.Sprintf("n%d", k+1))
			if k > 0 {
				httpPort = 0
			}
		}
		opts, err := natsauth.Options(cfg.Root, cfg.Passwords, natsauth.Overrides{
			Host:     "127.0.0.1",
			Port:     4222 + cfg.PortOffset + 10*k,
			StoreDir: dir,
			HTTPPort: httpPort,
			LogFile:  filepath.Join(cfg.Dir, "logs", "nats.log"),
		})
		if err != nil {
			return nil, err
		}
		if n > 1 {
			opts.ServerName = fmt.Sprintf("n%d", k+1)
			opts.Cluster = server.ClusterOpts{Name: "eventshop", Host: "127.0.0.1", Port: 6222 + cfg.PortOffset + k, Username: "route", Password: routePassword}
			opts.Routes = routes
		}
		ns, err := StartNATS(opts, 15*time.Second)
		if err != nil {
			for _, started := range nodes {
				started.Shutdown()
			}
			return nil, err
		}
		nodes = append(nodes, ns)
	}
	return nodes, nil
}
