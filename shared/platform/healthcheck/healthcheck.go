// Package healthcheck is the `<binary> healthcheck` sub-command used by
// Docker HEALTHCHECK: distroless images have no curl, so the binary probes
// its own /health endpoint. The caller decides the exit code.
package healthcheck

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Timeout bounds one probe: shorter than the HEALTHCHECK --timeout (3s), so
// the probe reports its own error instead of being killed.
const Timeout = 2 * time.Second

// URL returns the /health URL of a server listening on addr (":8082",
// "0.0.0.0:8082" or "127.0.0.1:8082"), always dialled on the loopback.
func URL(addr string) (string, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", fmt.Errorf("listen address %q has no port: %w", addr, err)
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port) + "/health", nil
}

// Probe GETs the /health endpoint of the server on addr and reports whether
// it answered 200 within Timeout.
func Probe(ctx context.Context, addr string) error {
	url, err := URL(addr)
	if err != nil {
		return fmt.Errorf("health probe: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health probe: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health probe: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health probe: %s answered %d", url, resp.StatusCode)
	}
	return nil
}
