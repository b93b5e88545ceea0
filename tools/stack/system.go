package stack

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Env returns the environment that runs s on the loopback interface with
// every port moved by portOffset, against the NATS server at natsURL. The
// NATS credentials are not part of it (each service has its own user).
func (s Spec) Env(natsURL string, portOffset int, adminToken string) []string {
	gw := strconv.Itoa(GatewayPort + portOffset)
	return []string{
		"NATS_URL=" + natsURL,
		"HTTP_ADDR=127.0.0.1:" + strconv.Itoa(s.Port+portOffset),
		"GATEWAY_ADDR=127.0.0.1:" + gw,
		"GATEWAY_URL=http://127.0.0.1:" + gw,
		"ADMIN_TOKEN=" + adminToken,
		"GATEWAY_API_KEY=" + gatewayAPIKey,
		"AUDIT_FINGERPRINT_KEY=" + auditFingerprintKey,
	}
}

// auditFingerprintKey keys the audit timeline's payment-token
// fingerprints: random for each run of the stack, the same for every audit
// instance and restart within it (52 bytes).
var auditFingerprintKey = rand.Text() + rand.Text()

// gatewayAPIKey is payment-service's credential at the gateway simulator:
// random for each run of the stack; only those two read it (tools reach
// the simulator's GET /charges and /admin/mode with the admin token).
var gatewayAPIKey = rand.Text()

// GatewayPort is the default port of the payment-gateway simulator.
const GatewayPort = 8090

// URL returns the base URL of s with its port moved by portOffset.
func (s Spec) URL(portOffset int) string {
	return "http://127.0.0.1:" + strconv.Itoa(s.Port+portOffset)
}

// ReadyURL returns the URL that answers 200 once s can work: /ready for a
// service, /health for the gateway simulator (it has no dependencies).
func (s Spec) ReadyURL(portOffset int) string {
	if s.Name == "payment-gateway" {
		return s.URL(portOffset) + "/health"
	}
	return s.URL(portOffset) + "/ready"
}

// FindRoot returns the repository root: the first directory holding
// go.work, from the working directory upwards.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work found above the working directory; pass -root")
		}
		dir = parent
	}
}

// StopAll stops every process at once (SIGTERM, then SIGKILL after grace)
// and reports each failure to report.
func StopAll(procs []*Process, grace time.Duration, report func(name string, err error)) {
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Stop(grace); err != nil {
				report(p.Name, err)
			}
		}()
	}
	wg.Wait()
}
