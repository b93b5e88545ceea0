package httpserver

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestConnLimitMakesRoom walks the bound's choices with a controlled
// clock: near the bound idle connections live pressureIdle, at the bound
// the longest idle goes first, then the longest silent past silentGrace,
// then connections are accepted for probes only, and past the headroom
// Accept waits.
func TestConnLimitMakesRoom(t *testing.T) {
	t.Parallel()
	const n = 4
	now := time.Unix(0, 0)
	reg := prometheus.NewRegistry()
	l := newConnLimit(n, reg)
	shedCount := func(reason string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if mf.GetName() == "eventshop_http_connections_shed_total" && m.GetLabel()[0].GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	l.now = func() time.Time { return now }
	conn := func() *trackedConn {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		return &trackedConn{Conn: a, limit: l}
	}
	admit := func(what string) (*trackedConn, []*trackedConn) {
		t.Helper()
		c := conn()
		l.mu.Lock()
		shed, wait := l.makeRoom(c)
		l.mu.Unlock()
		if wait != 0 {
			t.Fatalf("%s: told to wait %v, want admitted", what, wait)
		}
		return c, shed
	}
	var cs []*trackedConn
	for i := range n {
		c, shed := admit("below the bound")
		if len(shed) != 0 || c.probeOnly {
			t.Fatalf("connection %d below the bound: shed %d, probe only %v", i+1, len(shed), c.probeOnly)
		}
		l.connState(c, http.StateActive)
		l.connState(c, http.StateIdle)
		cs = append(cs, c)
	}
	// cs[0] is idle past pressureIdle: at the bound it goes, and only it.
	now = now.Add(pressureIdle - time.Second)
	l.connState(cs[1], http.StateActive)
	l.connState(cs[1], http.StateIdle) // cs[1..3] idle for less than pressureIdle
	l.connState(cs[2], http.StateActive)
	l.connState(cs[3], http.StateActive)
	now = now.Add(time.Second)
	c, shed := admit("at the bound with an idle connection")
	if len(shed) != 1 || shed[0] != cs[0] || c.probeOnly {
		t.Fatalf("shed %v (want only the connection idle the longest), probe only %v", shed, c.probeOnly)
	}
	// Busy: cs[2], cs[3]; idle: cs[1]; silent: c.
	c2, shed := admit("at the bound with an idle connection")
	if len(shed) != 1 || shed[0] != cs[1] || c2.probeOnly {
		t.Fatalf("shed %v (want the idle one before the silent one), probe only %v", shed, c2.probeOnly)
	}
	// Busy: cs[2], cs[3]; silent: c, c2, both new.
	p, shed := admit("every slot busy or newly connected")
	if len(shed) != 0 || !p.probeOnly {
		t.Fatalf("shed %v, probe only %v; want a probe-only connection", shed, p.probeOnly)
	}
	now = now.Add(silentGrace)
	c3, shed := admit("a connection silent past the grace")
	if len(shed) != 1 || shed[0] != c || c3.probeOnly {
		t.Fatalf("shed %v (want the oldest silent), probe only %v", shed, c3.probeOnly)
	}
	for _, c := range []*trackedConn{c2, c3} {
		l.connState(c, http.StateActive)
	}
	for range probeHeadroom(n) - 1 {
		c, shed := admit("headroom")
		if len(shed) != 0 || !c.probeOnly {
			t.Fatalf("shed %v, probe only %v; want a probe-only connection", shed, c.probeOnly)
		}
		l.connState(c, http.StateActive)
	}
	l.mu.Lock()
	_, wait := l.makeRoom(conn())
	l.mu.Unlock()
	if wait == 0 {
		t.Fatal("admitted past the bound and the headroom with every connection busy")
	}
	if got := shedCount("idle_pressure") + shedCount("idle"); got != 2 {
		t.Fatalf("idle connections shed = %v, want 2", got)
	}
	if got := shedCount("silent"); got != 1 {
		t.Fatalf("silent connections shed = %v, want 1", got)
	}
	if l.regular+l.probes != n+probeHeadroom(n) {
		t.Fatalf("open = %d, want %d", l.regular+l.probes, n+probeHeadroom(n))
	}
	p.Close() // a closed connection frees its place
	if l.regular+l.probes != n+probeHeadroom(n)-1 {
		t.Fatalf("open after a close = %d, want %d", l.regular+l.probes, n+probeHeadroom(n)-1)
	}
}
