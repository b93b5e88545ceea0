// Command bench runs the system's benchmark (tools/bench) and writes the
// figures into docs/benchmarks.md between its markers, keeping the
// hand-written text around them. `make bench` runs it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/eventshop/tools/bench"
	"github.com/eventshop/tools/stack"
)

// natsCLI is the natscli release whose `nats bench` measures the broker.
const natsCLI = "github.com/nats-io/natscli/nats@v0.5.0"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var cfg bench.Config
	var out, jsonOut, syncs, rates, cli, tracing string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&out, "out", "docs/benchmarks.md", "page to write the figures into (\"\": print them only)")
	fs.StringVar(&jsonOut, "json", "", "also write every report as JSON to this file")
	fs.StringVar(&syncs, "syncs", "default,always", "JetStream fsync settings to measure, in order (\"\": none, e.g. for -tracing alone)")
	fs.DurationVar(&cfg.MaxLoad, "max-duration", 30*time.Second, "closed-loop run for the sustained maximum")
	fs.IntVar(&cfg.MaxInFlight, "max-inflight", 64, "orders in flight in the closed-loop run")
	fs.StringVar(&rates, "rates", "100,300,1000", "open-loop rates, orders/s")
	fs.DurationVar(&cfg.RateLoad, "rate-duration", 10*time.Second, "each open-loop run")
	fs.DurationVar(&cfg.Outage, "outage", 60*time.Second, "gateway outage (0: skip)")
	fs.Float64Var(&cfg.OutageRate, "outage-rate", 50, "orders/s offered during the outage")
	fs.IntVar(&cfg.PortOffset, "port-offset", 400, "added to every default port (the system runs beside make run)")
	fs.StringVar(&tracing, "tracing", "off,1,0.1", "sampling settings for the tracing cost: the closed loop again per setting, exporting to a Jaeger beside the system (\"\": skip)")
	var merge string
	fs.StringVar(&merge, "merge", "", "JSON results of an earlier run (-json) to render before this run's")
	fs.StringVar(&cli, "nats-cli", "", "nats CLI for the broker's raw capacity (default: install "+natsCLI+" into .bin/; \"off\" skips)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := stack.FindRoot()
	if err != nil {
		return err
	}
	cfg.Root, cfg.Log = root, os.Stderr
	for _, s := range strings.Split(syncs, ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.Syncs = append(cfg.Syncs, s)
		}
	}
	for _, t := range strings.Split(tracing, ",") {
		if t = strings.TrimSpace(t); t != "" {
			cfg.Tracing = append(cfg.Tracing, t)
		}
	}
	for _, s := range strings.Split(rates, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		r, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("-rates: %w", err)
		}
		cfg.Rates = append(cfg.Rates, r)
	}
	cfg.WorkDir = filepath.Join(root, ".data", "bench")
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return err
	}
	switch cli {
	case "off":
	case "":
		if cfg.NatsCLI, err = installNatsCLI(ctx, root); err != nil {
			return err
		}
	default:
		cfg.NatsCLI = cli
	}
	var earlier []bench.Result
	if merge != "" {
		b, err := os.ReadFile(merge)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &earlier); err != nil {
			return fmt.Errorf("-merge %s: %w", merge, err)
		}
	}
	started := time.Now()
	results, err := bench.Run(ctx, cfg)
	results = append(earlier, results...)
	if jsonOut != "" && len(results) > 0 {
		b, jerr := json.MarshalIndent(results, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(jsonOut, b, 0o644)
		}
		if jerr != nil {
			fmt.Fprintln(os.Stderr, "bench: json:", jerr)
		}
	}
	if err != nil {
		return err
	}
	generated := bench.Render(results, "make bench  # go run ./tools/cmd/bench "+strings.Join(args, " "), started)
	fmt.Print(generated)
	if out == "" {
		return nil
	}
	path := filepath.Join(root, out)
	page, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if len(page) == 0 {
		page = []byte("# Benchmarks\n")
	}
	if err := os.WriteFile(path, bench.Splice(page, generated), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: figures written to %s (%s in all)\n", out, time.Since(started).Round(time.Second))
	return nil
}

// installNatsCLI returns the nats CLI in .bin/, installing it there from the
// Go module proxy the first time (about a minute and a half).
func installNatsCLI(ctx context.Context, root string) (string, error) {
	bin := filepath.Join(root, ".bin")
	path := filepath.Join(bin, "nats")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	fmt.Fprintf(os.Stderr, "bench: installing %s into %s\n", natsCLI, bin)
	cmd := exec.CommandContext(ctx, "go", "install", natsCLI)
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOWORK=off", "GOFLAGS=-buildvcs=false")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("install %s: %w", natsCLI, err)
	}
	return path, nil
}
