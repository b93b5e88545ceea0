package healthcheck_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/eventshop/shared/platform/healthcheck"
)

func TestURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		addr    string
		want    string
		wantErr bool
	}{
		{name: "port only", addr: ":8082", want: "http://127.0.0.1:8082/health"},
		{name: "all interfaces", addr: "0.0.0.0:8090", want: "http://127.0.0.1:8090/health"},
		{name: "no port", addr: "localhost", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := healthcheck.URL(tt.addr)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("URL(%q) = %q, %v; want %q, err %v", tt.addr, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestProbe(t *testing.T) {
	t.Parallel()
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer healthy.Close()
	addr := strings.TrimPrefix(healthy.URL, "http://")
	if err := healthcheck.Probe(context.Background(), addr); err != nil {
		t.Fatalf("healthy server: %v", err)
	}
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	if err := healthcheck.Probe(context.Background(), strings.TrimPrefix(sick.URL, "http://")); err == nil {
		t.Fatal("503 server passed the probe")
	}
}
