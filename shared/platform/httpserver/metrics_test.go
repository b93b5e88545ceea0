package httpserver_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestMetricLabelsAreBounded: made-up methods, long method names and
// unmatched paths do not add series; they are counted as OTHER and
// "unmatched".
func TestMetricLabelsAreBounded(t *testing.T) {
	t.Parallel()
	s, reg, _ := startBounded(t, 0, nil, nil)
	send := func(method, path string) {
		w := httptest.NewRecorder()
		s.Engine.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	}
	const madeUp = 500
	for i := range madeUp {
		send(fmt.Sprintf("M%04d", i), "/thing")
		send("GET", fmt.Sprintf("/nope/%d", i))
	}
	send(strings.Repeat("X", 10_000), "/thing")
	send("GET", "/thing")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := 0
	var other float64
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "eventshop_http_request") {
			continue
		}
		for _, m := range mf.GetMetric() {
			series++
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
				if len(lp.GetValue()) > 32 {
					t.Errorf("%s has a %d-byte %s label", mf.GetName(), len(lp.GetValue()), lp.GetName())
				}
			}
			if mf.GetName() == "eventshop_http_requests_total" && labels["method"] == "OTHER" {
				other += m.GetCounter().GetValue()
			}
		}
	}
	// (route /thing or unmatched) x (GET or OTHER) x a few statuses, both metrics.
	if series > 12 {
		t.Fatalf("%d request series after %d made-up methods and %d unmatched paths, want a bounded few", series, madeUp+1, madeUp)
	}
	if other != madeUp+1 {
		t.Fatalf("requests counted as method OTHER = %v, want %d", other, madeUp+1)
	}
}

// TestOversizedRequestHeadIsRefused: a request line or headers past the
// header limit (here a 200 KB method name) are refused with 431 before any
// handler, log line or metric sees them.
func TestOversizedRequestHeadIsRefused(t *testing.T) {
	t.Parallel()
	_, _, url := startBounded(t, 0, nil, nil)
	for _, tt := range []struct{ name, head string }{
		{"200 KB method", strings.Repeat("X", 200<<10) + " /thing HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"200 KB header", "GET /thing HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 200<<10) + "\r\n\r\n"},
	} {
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = c.Write([]byte(tt.head)) }() // the server may answer before reading it all
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("%s: status %d, want 431", tt.name, resp.StatusCode)
		}
	}
}
