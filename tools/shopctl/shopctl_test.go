package shopctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/eventshop/tools/shopctl"
)

// fakeAdmin stands in for a service's /admin/dlq API (the real one is
// exercised by the end-to-end tests); it records the requests it gets.
type fakeAdmin struct {
	mu   sync.Mutex
	reqs []string
}

func (f *fakeAdmin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.reqs = append(f.reqs, r.Method+" "+r.URL.RequestURI())
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer tok" {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"type":"urn:eventshop:problem:unauthorized","status":401,"detail":"send the token"}`))
		return
	}
	letter := map[string]any{"sequence": 7, "consumer": "inventory-orders", "original_stream": "ORDERS", "original_sequence": 3,
		"original_subject": "orders.o-1.created", "deliveries": 1, "error": "permanent failure: invalid event",
		"dead_lettered_at": "2026-11-23T10:00:00Z", "order_id": "o-1",
		"headers": map[string][]string{"traceparent": {"00-abc-def-01"}}, "data": map[string]any{"id": "e-1"}}
	var body any
	switch r.Method + " " + r.URL.Path {
	case "GET /admin/dlq":
		body = map[string]any{"stream": "ORDERS", "count": 1, "dead_letters": []any{letter}}
	case "GET /admin/dlq/7", "DELETE /admin/dlq/7":
		body = letter
	case "GET /admin/dlq/8":
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"type":"urn:eventshop:problem:dead-letter-not-found","status":404,"detail":"dead letter 8: dead letter not found"}`))
		return
	case "POST /admin/dlq/7/replay":
		body = map[string]any{"sequence": 7, "consumer": "inventory-orders", "original_subject": "orders.o-1.created", "replay_sequence": 42}
	case "POST /admin/dlq/replay":
		body = map[string]any{"replayed": []any{map[string]any{"sequence": 7, "consumer": "inventory-orders",
			"original_subject": "orders.o-1.created", "replay_sequence": 42, "duplicate": true}},
			"failed": []any{map[string]any{"sequence": 9, "error": "dead letter 9: original lost"}}}
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

func TestShopctl(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		env      string // ADMIN_TOKEN
		wantCode int
		wantOut  []string
		wantErr  string
		wantReq  string
	}{
		{name: "list as a table", args: []string{"dlq", "list", "--consumer", "inventory-orders"}, env: "tok",
			wantOut: []string{"SEQ", "inventory-orders", "orders.o-1.created", "invalid event", "1 dead letter(s) of ORDERS events"},
			wantReq: "GET /admin/dlq?consumer=inventory-orders"},
		{name: "flags after the command, token flag", args: []string{"dlq", "list", "--url", "", "--token", "tok", "--json"},
			wantOut: []string{`"dead_letters": [`}, wantReq: "GET /admin/dlq"},
		{name: "show", args: []string{"dlq", "show", "7"}, env: "tok",
			wantOut: []string{"consumer:", "inventory-orders", "header traceparent:", `"id": "e-1"`}, wantReq: "GET /admin/dlq/7"},
		{name: "show unknown", args: []string{"dlq", "show", "8"}, env: "tok", wantCode: shopctl.ExitFail,
			wantErr: "404 dead-letter-not-found"},
		{name: "replay one", args: []string{"dlq", "replay", "7"}, env: "tok",
			wantOut: []string{"replayed dead letter 7 (inventory-orders) to orders.o-1.created as stream seq 42"}, wantReq: "POST /admin/dlq/7/replay"},
		{name: "replay all reports failures", args: []string{"dlq", "replay", "--all"}, env: "tok", wantCode: shopctl.ExitFail,
			wantOut: []string{"already there", "FAILED dead letter 9", "replay: 1 done, 1 failed"}, wantErr: "left as they were",
			wantReq: "POST /admin/dlq/replay?all=true"},
		{name: "discard one", args: []string{"dlq", "discard", "7"}, env: "tok",
			wantOut: []string{"discarded dead letter 7"}, wantReq: "DELETE /admin/dlq/7"},
		{name: "no token", args: []string{"dlq", "list"}, wantCode: shopctl.ExitFail, wantErr: "401 unauthorized"},
		{name: "bulk without a filter", args: []string{"dlq", "replay"}, env: "tok", wantCode: shopctl.ExitUsage, wantErr: "--all"},
		{name: "sequence and filter", args: []string{"dlq", "discard", "7", "--all"}, env: "tok", wantCode: shopctl.ExitUsage},
		{name: "bad sequence", args: []string{"dlq", "show", "x"}, env: "tok", wantCode: shopctl.ExitUsage},
		{name: "unknown command", args: []string{"dlq", "purge"}, env: "tok", wantCode: shopctl.ExitUsage},
		{name: "no command", args: nil, wantCode: shopctl.ExitUsage, wantErr: "usage: shopctl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeAdmin{}
			srv := httptest.NewServer(fake)
			t.Cleanup(srv.Close)
			args := append([]string{"--url", srv.URL}, tt.args...)
			for i, a := range args { // "--url ''" in a case means: keep the server's
				if a == "" && i > 0 && args[i-1] == "--url" {
					args[i] = srv.URL
				}
			}
			var out, errOut bytes.Buffer
			code := shopctl.Run(context.Background(), args, &out, &errOut, func(k string) string {
				if k == "ADMIN_TOKEN" {
					return tt.env
				}
				return ""
			})
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out.String(), errOut.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			if tt.wantErr != "" && !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErr, errOut.String())
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			if tt.wantReq != "" && (len(fake.reqs) != 1 || fake.reqs[0] != tt.wantReq) {
				t.Errorf("requests %v, want [%s]", fake.reqs, tt.wantReq)
			}
			if tt.wantCode == shopctl.ExitUsage && len(fake.reqs) != 0 {
				t.Errorf("a usage error sent %v", fake.reqs)
			}
		})
	}
}
