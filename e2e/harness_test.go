package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventshop/shared/api/apitest"
	"github.com/eventshop/shared/api/openapi"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/tools/natsauth"
	"github.com/eventshop/tools/stack"
)

const adminToken = "e2e-admin-token"

// gatewayAPIKey is payment-service's credential at the gateway simulator.
const gatewayAPIKey = "e2e-gateway-api-key"

// system is the running system under test.
type system struct {
	nats   *natstest.Server
	natsPw natsauth.Passwords // each service logs in as its own user
	procs  map[string]*stack.Process
	urls   map[string]string
	dir    string
	// otlp receives every process's spans (OTLP/HTTP, 100 % sampled).
	otlp *otlpReceiver
}

var sys *system

func TestMain(m *testing.M) {
	code, err := runMain(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func runMain(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "eventshop-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := filepath.Abs("..")
	if err != nil {
		return 0, err
	}
	bins, err := stack.Build(ctx, root, filepath.Join(dir, "bin"), os.Stderr)
	if err != nil {
		return 0, err
	}
	// The production NATS configuration, users and permissions included:
	// the suite passing proves every service works under least privilege.
	pw := natsauth.NewPasswords(func(string) string { return "" })
	opts, err := natsauth.Options(root, pw, natsauth.Overrides{
		Host:     "127.0.0.1",
		Port:     -1,
		StoreDir: filepath.Join(dir, "nats"),
		LogFile:  filepath.Join(dir, "nats.log"),
	})
	if err != nil {
		return 0, err
	}
	ns, err := natstest.Run(opts)
	if err != nil {
		return 0, err
	}
	ns.ConfigureLogger()
	defer ns.Stop()
	otlp, err := startOTLPReceiver()
	if err != nil {
		return 0, err
	}
	defer otlp.Close()
	s := &system{nats: ns, natsPw: pw, procs: map[string]*stack.Process{}, urls: map[string]string{}, dir: dir, otlp: otlp}
	ports := map[string]int{}
	for _, spec := range stack.Specs {
		p, err := freePort()
		if err != nil {
			return 0, err
		}
		ports[spec.Name] = p
		s.urls[spec.Name] = "http://127.0.0.1:" + strconv.Itoa(p)
	}
	for _, spec := range stack.Specs {
		logf, err := os.Create(filepath.Join(dir, spec.Name+".log"))
		if err != nil {
			return 0, err
		}
		defer logf.Close()
		env := []string{
			"NATS_URL=" + ns.ClientURL(),
			"HTTP_ADDR=127.0.0.1:" + strconv.Itoa(ports[spec.Name]),
			"GATEWAY_ADDR=127.0.0.1:" + strconv.Itoa(ports["payment-gateway"]),
			"GATEWAY_URL=" + s.urls["payment-gateway"],
			"ADMIN_TOKEN=" + adminToken,
			"GATEWAY_API_KEY=" + gatewayAPIKey,
			"AUDIT_FINGERPRINT_KEY=" + gatewayAPIKey + gatewayAPIKey,
			"LOG_LEVEL=debug",
			"BREAKER_OPEN_TIMEOUT=500ms",
			"BREAKER_FAILURE_THRESHOLD=3",
			"GATEWAY_TIMEOUT=2s",
			"SHUTDOWN_TIMEOUT=10s",
			// Every span to the test's OTLP receiver, exported quickly.
			"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp.Endpoint(),
			"OTEL_TRACES_SAMPLER=always_on",
			"OTEL_SERVICE_NAME=" + spec.Name,
			"OTEL_BSP_SCHEDULE_DELAY=100",
		}
		if creds, err := pw.ClientEnv(spec.Name); err == nil { // the gateway simulator does not use NATS
			env = append(env, creds...)
		}
		p := &stack.Process{Name: spec.Name, Bin: bins[spec.Name], Log: logf, Env: env}
		if err := p.Start(); err != nil {
			return 0, err
		}
		s.procs[spec.Name] = p
	}
	defer func() {
		for _, p := range s.procs {
			if err := p.Stop(15 * time.Second); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: stop %s: %v\n", p.Name, err)
			}
		}
	}()
	for _, spec := range stack.Specs {
		if err := s.waitReady(ctx, spec.Name); err != nil {
			s.dumpLogs()
			return 0, err
		}
	}
	sys = s
	code := m.Run()
	// A denied operation can hide behind retries; none may happen.
	if code == 0 {
		if v := s.permissionViolations(); v != "" {
			fmt.Fprintf(os.Stderr, "e2e: nats-server refused operations the services need:\n%s\n", v)
			code = 1
		}
	}
	if code != 0 {
		s.dumpLogs()
	}
	return code, nil
}

// permissionViolations returns the nats-server log lines reporting a
// refused publish or subscribe.
func (s *system) permissionViolations() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "nats.log"))
	if err != nil {
		return "read nats.log: " + err.Error()
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, "Publish Violation") || strings.Contains(line, "Subscription Violation") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// adminConn connects to NATS as the admin user, for inspecting streams.
func (s *system) adminConn(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.nats.ClientURL(), nats.UserInfo(natsauth.Admin, s.natsPw[natsauth.Admin]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func (s *system) waitReady(ctx context.Context, name string) error {
	path := "/ready"
	if name == "payment-gateway" {
		path = "/health"
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return stack.WaitReady(ctx, s.urls[name]+path)
}

// dumpLogs prints the tail of every process log, for a failing run.
func (s *system) dumpLogs() {
	names := []string{"nats"}
	for _, spec := range stack.Specs {
		names = append(names, spec.Name)
	}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(s.dir, name+".log"))
		if err != nil {
			continue
		}
		if len(b) > 6000 {
			b = b[len(b)-6000:]
		}
		fmt.Fprintf(os.Stderr, "\n===== %s (tail) =====\n%s\n", name, b)
	}
}

// restart SIGKILLs (crash) or SIGTERMs a process, starts it again and waits
// until it is ready.
func (s *system) restart(t *testing.T, name string, crash bool) {
	t.Helper()
	p := s.procs[name]
	if crash {
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
	} else if err := p.Stop(15 * time.Second); err != nil {
		t.Fatalf("graceful stop of %s: %v", name, err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.waitReady(context.Background(), name); err != nil {
		t.Fatal(err)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func uniq(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	return prefix + "-" + hex.EncodeToString(b)
}

// call sends a JSON request and decodes a JSON response into out (if
// non-nil). An exchange with a service is held to its OpenAPI document.
func call(t *testing.T, method, url string, body any, headers map[string]string, out any) (int, http.Header) {
	t.Helper()
	var (
		r       io.Reader
		reqBody []byte
	)
	if body != nil {
		var err error
		if reqBody, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(reqBody)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if c := contractOf(t, url); c != nil {
		if err := c.Check(req, reqBody, resp, raw); err != nil {
			t.Errorf("%s %s: %v\nresponse body: %.2000s", method, url, err, raw)
		}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, url, raw, err)
		}
	}
	return resp.StatusCode, resp.Header
}

// contractOf returns the checker of the service url is on (nil for the
// gateway simulator, which has no document).
func contractOf(t *testing.T, url string) *apitest.Checker {
	t.Helper()
	for name, base := range sys.urls {
		service, ok := strings.CutSuffix(name, "-service")
		if !ok || !strings.HasPrefix(url, base+"/") {
			continue
		}
		c, err := apitest.For(openapi.Service(service))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return nil
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
