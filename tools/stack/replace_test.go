package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes this test binary a small service instead of the tests:
// Replace is tested on real processes, copies of this binary whose file
// name says how they behave (helper).
const helperEnv = "STACK_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helper())
	}
	os.Exit(m.Run())
}

// helper serves HTTP_ADDR, answering every request with its executable's
// path, and by its file name: "serve" is ready and exits on SIGTERM,
// "stubborn" ignores SIGTERM, "unready" answers 503 for ever.
func helper() int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Println(err)
		return 1
	}
	kind := filepath.Base(exe)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	ln, err := net.Listen("tcp", os.Getenv("HTTP_ADDR"))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Printf("%s started: %s\n", kind, exe)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if kind == "unready" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprint(w, exe)
	}))
	for range term {
		if kind != "stubborn" {
			fmt.Printf("%s stopping on SIGTERM: %s\n", kind, exe)
			return 0
		}
		fmt.Printf("%s ignores SIGTERM\n", kind)
	}
	return 0
}

// helperBins copies this test binary to dir/<name> for each name (copies,
// not links: Runs tells files apart).
func helperBins(t *testing.T, dir string, names ...string) map[string]string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, name := range names {
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := copyFile(self, dst); err != nil {
			t.Fatal(err)
		}
		out[name] = dst
	}
	return out
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// helperLocal runs one "order-service" instance from bin on a free port,
// as StartLocal would, with newBin as the binary built from the root.
func helperLocal(t *testing.T, bin, newBin string, grace time.Duration) *Local {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := instance{Spec: Spec{Name: "order-service", Port: port}, Program: "order-service"}
	l := &Local{cfg: LocalConfig{Dir: dir, StopGrace: grace}, built: map[string]string{"order-service": newBin},
		procs: map[string]*Process{}, specs: []instance{s}}
	f, err := os.Create(l.LogFile(s.Name))
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{Name: s.Name, Bin: bin, Log: f, Env: []string{helperEnv + "=1", "HTTP_ADDR=127.0.0.1:" + fmt.Sprint(port)}}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	l.procs[s.Name] = p
	t.Cleanup(func() { _ = p.Kill(); f.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitReady(ctx, l.readyURL(s.Name)); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestReplace(t *testing.T) {
	t.Parallel()
	bins := helperBins(t, t.TempDir(), "old/serve", "new/serve", "stubborn", "unready")
	old, newBin := bins["old/serve"], bins["new/serve"]
	tests := []struct {
		name     string
		from, to string
		wantErr  error  // errors.Is
		wantText string // in the error
		wantRuns string // the binary running afterwards
		wantLog  []string
		// shortGrace, shortWait: the grace before SIGKILL, the wait for
		// /ready, short for the case that tests it; otherwise time to
		// spare on a loaded machine (the race detector slows the helper
		// processes down).
		shortGrace, shortWait bool
	}{
		{name: "clean", from: old, to: newBin, wantRuns: newBin,
			wantLog: []string{"serve started: " + old, "serve stopping on SIGTERM: " + old, "serve started: " + newBin}},
		{name: "ignores SIGTERM: killed after the grace, replaced, reported", from: bins["stubborn"], to: newBin,
			wantText: "did not exit within", wantRuns: newBin, wantLog: []string{"stubborn ignores SIGTERM", "serve started: " + newBin}, shortGrace: true},
		{name: "missing binary: the instance keeps serving", from: old, to: filepath.Join(t.TempDir(), "nope"),
			wantErr: fs.ErrNotExist, wantRuns: old},
		{name: "a directory is no binary", from: old, to: t.TempDir(), wantText: "not an executable", wantRuns: old},
		{name: "never ready", from: old, to: bins["unready"], wantErr: context.DeadlineExceeded, wantRuns: bins["unready"], shortWait: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			grace, wait := 15*time.Second, 30*time.Second
			if tt.shortGrace {
				grace = 500 * time.Millisecond
			}
			if tt.shortWait {
				wait = 3 * time.Second
			}
			l := helperLocal(t, tt.from, newBin, grace)
			before, _ := l.proc("order-service")
			pid := before.Pid()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			err := l.Replace(ctx, "order-service", tt.to)
			switch {
			case tt.wantErr == nil && tt.wantText == "" && err != nil:
				t.Fatalf("Replace = %v, want nil", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("Replace = %v, want %v", err, tt.wantErr)
			case tt.wantText != "" && (err == nil || !strings.Contains(err.Error(), tt.wantText)):
				t.Fatalf("Replace = %v, want an error saying %q", err, tt.wantText)
			}
			runs, err := l.Runs("order-service", tt.wantRuns)
			if err != nil || !runs {
				t.Fatalf("Runs(%s) = %v, %v; want it running", tt.wantRuns, runs, err)
			}
			if samePid := before.Pid() == pid; samePid != (tt.wantRuns == tt.from) {
				t.Fatalf("pid %d before, %d after: want a new process exactly when the binary changed", pid, before.Pid())
			}
			stale, err := l.Stale()
			if err != nil {
				t.Fatal(err)
			}
			if wantStale := tt.wantRuns != newBin; (len(stale) == 1) != wantStale {
				t.Fatalf("Stale() = %v while running %s, built %s", stale, tt.wantRuns, newBin)
			}
			if tt.wantRuns == newBin {
				// Same name, same port: the new process answers there.
				resp, err := http.Get(l.readyURL("order-service"))
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != newBin {
					t.Fatalf("the instance's port is served by %q, want %s", body, newBin)
				}
			}
			log, err := os.ReadFile(l.LogFile("order-service"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(log)), "\n")
			for _, want := range tt.wantLog {
				if !slices.Contains(lines, want) {
					t.Fatalf("log %q lacks %q: both processes write the same log", lines, want)
				}
			}
		})
	}
}

func TestReplaceUnknownInstance(t *testing.T) {
	t.Parallel()
	l := &Local{procs: map[string]*Process{}}
	if err := l.Replace(context.Background(), "order-service-3", "/bin/true"); !errors.Is(err, ErrUnknownProcess) {
		t.Fatalf("Replace(order-service-3) = %v, want %v", err, ErrUnknownProcess)
	}
	if _, err := l.Runs("order-service-3", "/bin/true"); !errors.Is(err, ErrUnknownProcess) {
		t.Fatalf("Runs(order-service-3) = %v, want %v", err, ErrUnknownProcess)
	}
}
