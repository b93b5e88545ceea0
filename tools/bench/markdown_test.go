package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/eventshop/tools/loadgen"
)

func TestSpliceKeepsHandWrittenText(t *testing.T) {
	page := []byte("# Benchmarks\nintro\n" + BeginMarker + "\nold figures\n" + EndMarker + "\nanalysis\n")
	got := string(Splice(page, "new figures\n"))
	want := "# Benchmarks\nintro\n" + BeginMarker + "\nnew figures\n" + EndMarker + "\nanalysis\n"
	if got != want {
		t.Fatalf("Splice =\n%s\nwant\n%s", got, want)
	}
	// A page without markers gets the block appended.
	got = string(Splice([]byte("# B\n"), "x\n"))
	if !strings.HasPrefix(got, "# B\n") || !strings.Contains(got, BeginMarker+"\nx\n"+EndMarker) {
		t.Fatalf("Splice without markers = %q", got)
	}
}

func TestRenderNamesEveryFigure(t *testing.T) {
	res := []Result{{
		Sync: "always",
		Scenarios: []Scenario{{
			Name:   "open loop, 300 orders/s",
			Report: loadgen.Report{Mode: "open", TargetRate: 300, DurationSeconds: 20, Accepted: 6000, ConfirmedPerS: 291.5, Throughput: 299, EndToEnd: loadgen.Summary{P50: 12.5, P99: 48.25, Max: 1500}},
			CPU:    map[string]float64{"order-service": 0.31},
			Broker: Broker{StreamWrites: 14.2, PerStream: map[string]float64{"ORDERS": 2}},
		}},
		PeakRSSMB: map[string]float64{"order-service": 41},
		Raw:       []RawBench{{Name: "JetStream publish, synchronous, 1 client", MsgsPerS: 8123}},
	}}
	got := Render(res, "make bench", time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC))
	for _, want := range []string{"sync_interval: always", "291.5", "48.2 ms", "1.50 s", "| order-service | 0.31 | 41 MB |", "14.2 stored messages (ORDERS 2.00)", "| 8123 |"} {
		if !strings.Contains(got, want) {
			t.Errorf("render lacks %q:\n%s", want, got)
		}
	}
}

func TestParseRate(t *testing.T) {
	out := "14:01:02 Starting JetStream publisher ...\n [1] 6,100 msgs/sec ~ 3 MB/sec (10000 msgs)\n NATS JetStream synchronous publisher aggregated stats: 12,345 msgs/sec ~ 6.03 MB/sec\n"
	got, err := parseRate(out)
	if err != nil || got != 12345 {
		t.Fatalf("parseRate = %v, %v; want 12345", got, err)
	}
	if _, err := parseRate("nothing"); err == nil {
		t.Error("rate parsed from nothing")
	}
}

// TestRenderTracingCost: the tracing runs get their own table, each
// setting's rate against the run without tracing, the system's CPU per
// order without Jaeger's and Jaeger's beside it, and no section of their
// own as if they were another fsync setting.
func TestRenderTracingCost(t *testing.T) {
	run := func(tracing string, rate float64, cpu map[string]float64) Result {
		return Result{Sync: "default", Tracing: tracing, Scenarios: []Scenario{{
			Name:          "closed loop, 64 sagas in flight",
			Report:        loadgen.Report{Mode: "closed", Concurrency: 64, ConfirmedPerS: rate, EndToEnd: loadgen.Summary{P50: 150, P99: 250}},
			CPUPerOrderMs: cpu,
		}}}
	}
	res := []Result{
		run("off", 400, map[string]float64{"order-service": 1.0, "nats-server (in devstack)": 2.0, jaegerName: 0.01}),
		run("1", 300, map[string]float64{"order-service": 1.5, "nats-server (in devstack)": 2.5, jaegerName: 0.5}),
		run("0.1", 380, map[string]float64{"order-service": 1.1, "nats-server (in devstack)": 2.0, jaegerName: 0.05}),
	}
	got := Render(res, "make bench", time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC))
	for _, want := range []string{
		"### Tracing cost",
		"| off | 400.0 |  | 150.0 ms | 250.0 ms | 3.00 ms | — | ok |",
		"| sampling 1 | 300.0 | -25 % | 150.0 ms | 250.0 ms | 4.00 ms | 0.50 ms | ok |",
		"| sampling 0.1 | 380.0 | -5 % | 150.0 ms | 250.0 ms | 3.10 ms | 0.05 ms | ok |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("render lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "### JetStream fsync") {
		t.Errorf("tracing runs rendered as an fsync setting:\n%s", got)
	}
}
