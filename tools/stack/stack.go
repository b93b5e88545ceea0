// Package stack builds the eventshop binaries and runs them as separate OS
// processes against a NATS server: the engine behind `make run` and the
// end-to-end tests.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Spec describes one program of the system.
type Spec struct {
	Name string // binary and process name, e.g. "order-service"
	Pkg  string // import path of its main package
	Port int    // HTTP port
}

// Specs lists every program of the system in start order.
var Specs = []Spec{
	{Name: "payment-gateway", Pkg: "github.com/eventshop/payment-service/cmd/payment-gateway", Port: 8090},
	{Name: "order-service", Pkg: "github.com/eventshop/order-service/cmd/order-service", Port: 8080},
	{Name: "inventory-service", Pkg: "github.com/eventshop/inventory-service/cmd/inventory-service", Port: 8081},
	{Name: "payment-service", Pkg: "github.com/eventshop/payment-service/cmd/payment-service", Port: 8082},
	{Name: "notification-service", Pkg: "github.com/eventshop/notification-service/cmd/notification-service", Port: 8083},
	{Name: "audit-service", Pkg: "github.com/eventshop/audit-service/cmd/audit-service", Port: 8084},
}

// Build compiles every program into outDir with the workspace at root and
// returns the binary path of each by name.
func Build(ctx context.Context, root, outDir string, out io.Writer) (map[string]string, error) {
	return build(ctx, root, outDir, out)
}

// build is Build with more environment for go build.
func build(ctx context.Context, root, outDir string, out io.Writer, env ...string) (map[string]string, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", outDir, err)
	}
	args := []string{"build", "-trimpath", "-o", outDir + string(os.PathSeparator)}
	bins := map[string]string{}
	for _, s := range Specs {
		args = append(args, s.Pkg)
		bins[s.Name] = filepath.Join(outDir, s.Name)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(append(os.Environ(), "GOWORK="+filepath.Join(root, "go.work")), env...)
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build: %w", err)
	}
	return bins, nil
}

// Process is one running program that can be stopped, killed and restarted.
type Process struct {
	Name string
	Bin  string
	Env  []string
	Log  io.Writer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts the process.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.Bin)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = p.Log, p.Log
	// Its own process group keeps a terminal's Ctrl-C away from it (the
	// parent stops it in order); Pdeathsig stops it if the parent dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd = cmd
	done := make(chan struct{})
	p.done = done
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// Done is closed when the current run of the process exits.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Running reports whether the process is running.
func (p *Process) Running() bool {
	select {
	case <-p.Done():
		return false
	default:
		return true
	}
}

// Pid returns the process id of the current run.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *Process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return errors.New(p.Name + " not started")
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.Name, err)
	}
	return nil
}

// Stop sends SIGTERM and waits up to grace for a clean exit, then kills.
// It returns the process's exit error, if any (nil after a clean exit).
func (p *Process) Stop(grace time.Duration) error {
	if !p.Running() {
		return nil
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.Done():
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	case <-time.After(grace):
		_ = p.Kill() // already failing: report the timeout below
		return fmt.Errorf("%s did not exit within %s of SIGTERM", p.Name, grace)
	}
}

// Kill sends SIGKILL, as a crash would, and waits for the exit.
func (p *Process) Kill() error {
	if !p.Running() {
		return nil
	}
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.Done()
	return nil
}

// WaitReady polls url until it answers 200 or ctx ends.
func WaitReady(ctx context.Context, url string) error {
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", url, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
