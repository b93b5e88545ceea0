package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/eventshop/tools/stack"
)

// TracingOff is the sampling setting of a run with no exporter at all.
const TracingOff = "off"

// jaegerName is Jaeger's row among the processes of a tracing run.
const jaegerName = "jaeger (beside the system)"

// jaeger is Jaeger v2 started for the tracing runs by
// deployments/tracing/run.sh (which builds it once, from a per-user cache).
type jaeger struct {
	cmd      *exec.Cmd
	done     chan struct{}
	log      *os.File
	endpoint string // OTLP over HTTP
}

// startJaeger starts Jaeger on the ports of run.sh moved by the offset and
// waits for its health check.
func startJaeger(ctx context.Context, cfg Config) (*jaeger, error) {
	logf, err := os.Create(filepath.Join(cfg.WorkDir, "jaeger.log"))
	if err != nil {
		return nil, err
	}
	otlp, query, health := 4318+cfg.PortOffset, 16686+cfg.PortOffset, 13133+cfg.PortOffset
	cmd := exec.Command(filepath.Join(cfg.Root, "deployments", "tracing", "run.sh"))
	cmd.Dir = cfg.Root
	cmd.Env = append(os.Environ(), "JAEGER_OTLP_PORT="+strconv.Itoa(otlp), "JAEGER_QUERY_PORT="+strconv.Itoa(query),
		"JAEGER_HEALTH_PORT="+strconv.Itoa(health))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	fmt.Fprintln(cfg.Log, "bench: starting Jaeger for the tracing runs (a cold build of its binary takes minutes)")
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start jaeger: %w", err)
	}
	j := &jaeger{cmd: cmd, done: make(chan struct{}), log: logf, endpoint: fmt.Sprintf("http://127.0.0.1:%d", otlp)}
	go func() { _ = cmd.Wait(); close(j.done) }()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Minute) // the first build
	defer cancel()
	go func() { // stop waiting if run.sh gives up (a failed build)
		select {
		case <-j.done:
			cancel()
		case <-wctx.Done():
		}
	}()
	if err := stack.WaitReady(wctx, fmt.Sprintf("http://127.0.0.1:%d/status", health)); err != nil {
		j.stop()
		return nil, fmt.Errorf("jaeger: %w (see %s)", err, logf.Name())
	}
	return j, nil
}

// pid returns the Jaeger process's id (a child of run.sh).
func (j *jaeger) pid() (int, error) {
	kids, err := children("/proc", j.cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	for _, pid := range kids {
		return pid, nil // run.sh has one child while it waits: jaeger
	}
	return 0, errors.New("jaeger is not running")
}

func (j *jaeger) stop() {
	terminate(-j.cmd.Process.Pid, j.done, 20*time.Second) // run.sh and jaeger
	j.log.Close()
}

// tracingEnv is the services' OpenTelemetry settings for a sampling ratio
// (TracingOff: none, so nothing is exported).
func tracingEnv(sampling, endpoint string) []string {
	if sampling == TracingOff {
		return nil
	}
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + endpoint, "OTEL_TRACES_SAMPLER=parentbased_traceidratio",
		"OTEL_TRACES_SAMPLER_ARG=" + sampling}
}

// runTracing measures the closed loop once per sampling setting, each on a
// fresh system with the default fsync, Jaeger running beside all of them
// (its CPU is reported on its own row).
func runTracing(ctx context.Context, cfg Config, devstack string) ([]Result, error) {
	j, err := startJaeger(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer j.stop()
	var out []Result
	for _, sampling := range cfg.Tracing {
		if sampling != TracingOff {
			if v, err := strconv.ParseFloat(sampling, 64); err != nil || v <= 0 || v > 1 {
				return out, fmt.Errorf("tracing sampling %q: want %q or a ratio in (0, 1]", sampling, TracingOff)
			}
		}
		r, err := runSync(ctx, cfg, devstack, "default", variant{tracing: sampling, jaeger: j})
		if err != nil {
			return out, fmt.Errorf("tracing %s: %w", sampling, err)
		}
		out = append(out, r)
	}
	return out, nil
}
