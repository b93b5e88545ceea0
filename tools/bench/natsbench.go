package bench

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// RawBench is one `nats bench` measurement of the broker alone.
type RawBench struct {
	Name     string  `json:"name"`
	Args     string  `json:"args"`
	MsgsPerS float64 `json:"msgs_per_s"`
	Output   string  `json:"-"`
}

// rawRuns are the broker's raw capacity runs: file-storage publishes of
// 512-byte messages (about an event's size), synchronous (one at a time,
// like a service waiting for each ack) and asynchronous (pipelined).
var rawRuns = []struct{ name, mode, msgs, clients string }{
	{"JetStream publish, synchronous, 1 client", "sync", "20000", "1"},
	{"JetStream publish, synchronous, 16 clients", "sync", "40000", "16"},
	{"JetStream publish, asynchronous, 1 client", "async", "200000", "1"},
}

func natsBench(ctx context.Context, cfg Config) ([]RawBench, error) {
	var out []RawBench
	for _, r := range rawRuns {
		args := []string{"bench", "js", "pub", r.mode, "bench.raw",
			"--server", fmt.Sprintf("nats://127.0.0.1:%d", 4222+cfg.PortOffset),
			"--user", "admin", "--password", adminPass,
			"--msgs", r.msgs, "--clients", r.clients, "--size", "512B",
			"--storage", "file", "--create", "--purge", "--stream", "benchraw", "--no-progress"}
		fmt.Fprintf(cfg.Log, "bench: nats %s\n", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, cfg.NatsCLI, args...)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Run(); err != nil {
			return out, fmt.Errorf("nats bench %s: %w\n%s", r.name, err, buf.String())
		}
		rate, err := parseRate(buf.String())
		if err != nil {
			return out, fmt.Errorf("nats bench %s: %w\n%s", r.name, err, buf.String())
		}
		fmt.Fprintf(cfg.Log, "bench: %s: %.0f msgs/s\n", r.name, rate)
		redacted := strings.Replace(strings.Join(args, " "), adminPass, "…", 1)
		out = append(out, RawBench{Name: r.name, Args: redacted, MsgsPerS: rate, Output: buf.String()})
	}
	return out, nil
}

var rateRE = regexp.MustCompile(`stats:\s+([\d,]+)\s+msgs/sec`)

// parseRate returns the aggregate publish rate `nats bench` printed.
func parseRate(s string) (float64, error) {
	m := rateRE.FindAllStringSubmatch(s, -1)
	if len(m) == 0 {
		return 0, fmt.Errorf("no publish stats in the output")
	}
	// With several clients the aggregate line comes first; each client's
	// own line follows.
	return strconv.ParseFloat(strings.ReplaceAll(m[0][1], ",", ""), 64)
}
