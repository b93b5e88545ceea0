package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/eventshop/tools/natsauth"
	"github.com/eventshop/tools/stack"
)

type config struct {
	root       string
	dataDir    string
	natsHost   string
	natsPort   int
	portOffset int
	natsSync   string
	natsHTTP   int
	adminToken string
	natsPw     natsauth.Passwords
	follow     bool
	// natsProfPort serves nats-server's profiler (NATS_PROF_PORT; 0: off).
	natsProfPort int
}

func parse(args []string, getenv func(string) string) (config, error) {
	var c config
	fs := flag.NewFlagSet("devstack", flag.ContinueOnError)
	fs.StringVar(&c.root, "root", "", "repository root holding go.work (default: search upwards from the working directory)")
	fs.StringVar(&c.dataDir, "data", ".data", "data directory (NATS storage, logs, binaries), relative to the root")
	fs.StringVar(&c.natsHost, "nats-host", "127.0.0.1", "NATS listen host")
	fs.IntVar(&c.natsPort, "nats-port", 4222, "NATS listen port")
	fs.IntVar(&c.natsHTTP, "nats-monitor-port", 8222, "NATS monitoring port (0: off)")
	fs.IntVar(&c.portOffset, "port-offset", 0, "add this to every port (services, gateway, NATS), to run a second stack beside the first")
	fs.StringVar(&c.natsSync, "nats-sync", "always", `JetStream fsync: "always" (as production, every write) or "default" (the server's periodic 2-minute sync)`)
	fs.BoolVar(&c.follow, "follow", false, "copy every service's log lines to this terminal")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.natsSync != "always" && c.natsSync != "default" {
		return c, fmt.Errorf("-nats-sync %q: want always or default", c.natsSync)
	}
	c.natsPort += c.portOffset
	if c.natsHTTP != 0 {
		c.natsHTTP += c.portOffset
	}
	if c.root == "" {
		r, err := stack.FindRoot()
		if err != nil {
			return c, err
		}
		c.root = r
	}
	if !filepath.IsAbs(c.dataDir) {
		c.dataDir = filepath.Join(c.root, c.dataDir)
	}
	if v := getenv("NATS_PROF_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p <= 0 || p > 65535 {
			return c, fmt.Errorf("NATS_PROF_PORT=%q: want a port number", v)
		}
		c.natsProfPort = p
	}
	c.adminToken = getenv("ADMIN_TOKEN")
	if c.adminToken == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b) // never fails (Go 1.24+)
		c.adminToken = hex.EncodeToString(b)
	}
	// One password per NATS user: NATS_PASSWORD_<X> when set, else a fresh
	// random one for this run (nothing stored needs them across runs).
	c.natsPw = natsauth.NewPasswords(getenv)
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string) error {
	cfg, err := parse(args, getenv)
	if err != nil {
		return err
	}
	// The services inherit this environment: each gets its own NATS
	// password below, never the others' or the admin's.
	for _, u := range natsauth.Users {
		if err := os.Unsetenv(u.PasswordEnv); err != nil {
			return err
		}
	}
	for _, d := range []string{"nats", "logs", "bin"} {
		if err := os.MkdirAll(filepath.Join(cfg.dataDir, d), 0o755); err != nil {
			return err
		}
	}
	fmt.Println("devstack: building services ...")
	bins, err := stack.Build(ctx, cfg.root, filepath.Join(cfg.dataDir, "bin"), os.Stderr)
	if err != nil {
		return err
	}

	ns, err := startNATS(cfg)
	if err != nil {
		return err
	}
	defer func() {
		ns.Shutdown()
		fmt.Println("devstack: nats-server stopped")
	}()
	natsURL := ns.ClientURL()

	procs := make([]*stack.Process, 0, len(stack.Specs))
	var logFiles []*os.File
	defer func() {
		for _, f := range logFiles {
			f.Close()
		}
	}()
	for _, s := range stack.Specs {
		f, err := os.OpenFile(filepath.Join(cfg.dataDir, "logs", s.Name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		logFiles = append(logFiles, f)
		var w io.Writer = f
		if cfg.follow {
			w = io.MultiWriter(f, prefixed(s.Name))
		}
		// The OTEL_* settings (tracing) pass through from this environment;
		// only the service name is each program's own.
		env := append(s.Env(natsURL, cfg.portOffset, cfg.adminToken), "OTEL_SERVICE_NAME="+s.Name)
		if creds, err := cfg.natsPw.ClientEnv(s.Name); err == nil { // the gateway simulator does not use NATS
			env = append(env, creds...)
		}
		p := &stack.Process{Name: s.Name, Bin: bins[s.Name], Log: w, Env: env}
		if err := p.Start(); err != nil {
			stopAll(procs)
			return err
		}
		procs = append(procs, p)
	}

	readyCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, s := range stack.Specs {
		if err := stack.WaitReady(readyCtx, s.ReadyURL(cfg.portOffset)); err != nil {
			stopAll(procs)
			return fmt.Errorf("%s: %w (see %s)", s.Name, err, filepath.Join(cfg.dataDir, "logs", s.Name+".log"))
		}
	}
	banner(cfg, natsURL)

	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); supervise(ctx, p) }()
	}
	<-ctx.Done()
	fmt.Println("\ndevstack: stopping services (SIGTERM) ...")
	wg.Wait()
	stopAll(procs)
	return nil
}

// supervise restarts a process that exits while the stack is running, as a
// container runtime's restart policy would.
func supervise(ctx context.Context, p *stack.Process) {
	delay := 500 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.Done():
		}
		if ctx.Err() != nil {
			return
		}
		fmt.Printf("devstack: %s exited; restarting in %s\n", p.Name, delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		if err := p.Start(); err != nil {
			fmt.Printf("devstack: restart %s: %v\n", p.Name, err)
		}
		delay = min(2*delay, 10*time.Second)
	}
}

func stopAll(procs []*stack.Process) {
	stack.StopAll(procs, 25*time.Second, func(name string, err error) {
		fmt.Printf("devstack: %s: %v\n", name, err)
	})
}

// startNATS runs nats-server with the production configuration
// (deployments/nats/nats.conf and its users), listening on the loopback
// interface and storing under the data directory.
func startNATS(cfg config) (*stack.NATS, error) {
	opts, err := natsauth.Options(cfg.root, cfg.natsPw, natsauth.Overrides{
		Host:     cfg.natsHost,
		Port:     cfg.natsPort,
		StoreDir: filepath.Join(cfg.dataDir, "nats"),
		HTTPPort: cfg.natsHTTP,
		LogFile:  filepath.Join(cfg.dataDir, "logs", "nats.log"),
	})
	if err != nil {
		return nil, err
	}
	if cfg.natsSync == "default" {
		opts.SyncAlways, opts.SyncInterval = false, 0 // the server's default periodic sync
	}
	// NATS_PROF_PORT serves the embedded server's Go profiler (loopback
	// only), to see where the broker spends its CPU under load.
	if p := cfg.natsProfPort; p != 0 {
		opts.ProfPort = p
	}
	return stack.StartNATS(opts, 15*time.Second)
}

func banner(cfg config, natsURL string) {
	port := func(p int) int { return p + cfg.portOffset }
	fmt.Printf(`
eventshop is running
  order-service         http://127.0.0.1:%d   (POST /orders, GET /orders/{id})
  inventory-service     http://127.0.0.1:%d   (PUT /inventory/{sku} needs the admin token)
  payment-service       http://127.0.0.1:%d
  notification-service  http://127.0.0.1:%d
  audit-service         http://127.0.0.1:%d   (GET /audit/verify)
  payment-gateway (sim) http://127.0.0.1:%d   (PUT /admin/mode, GET /charges need the admin token)
  nats                  %s   (JetStream data in %s, fsync %s)
  logs                  %s

  ADMIN_TOKEN=%s   (every service's /admin/dlq: go run ./tools/cmd/shopctl dlq list)
  NATS admin            user %s, password %s
                        (e.g. nats --server %s --user %s --password %s stream ls)

Press Ctrl-C to stop.
`, port(8080), port(8081), port(8082), port(8083), port(8084), port(8090),
		natsURL, filepath.Join(cfg.dataDir, "nats"), cfg.natsSync, filepath.Join(cfg.dataDir, "logs"), cfg.adminToken,
		natsauth.Admin, cfg.natsPw[natsauth.Admin], natsURL, natsauth.Admin, cfg.natsPw[natsauth.Admin])
}

type prefixWriter struct {
	prefix string
	mu     sync.Mutex
}

func prefixed(name string) io.Writer { return &prefixWriter{prefix: fmt.Sprintf("%-21s| ", name)} }

func (w *prefixWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := os.Stdout.Write(append([]byte(w.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}
