package natstest

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartCluster starts n embedded servers with JetStream, routed into one
// cluster, for t, and shuts them down when the test ends. With lag > 0 every
// route to and from the last server passes through a proxy that delays
// each byte by lag, so that server's replicas apply writes lag behind the
// others: what a node on a slow link, or one catching up, looks like.
// StartCluster returns once every server has its routes and the cluster has
// a JetStream meta leader.
func StartCluster(t testing.TB, n int, lag time.Duration) []*Server {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	addr := func(port int) string { return fmt.Sprintf("nats://127.0.0.1:%d", port) }
	// slow[i] is the delayed way into server i's cluster port, for the
	// last server: others reach it only through it, and it reaches
	// others only through theirs.
	last := n - 1
	routesOf := make([][]string, n)
	advertise := make([]string, n)
	for i := range n {
		for j := range n {
			if i == j {
				continue
			}
			target := addr(ports[j])
			if lag > 0 && (i == last || j == last) {
				target = addr(delayProxy(t, ports[j], lag))
			}
			routesOf[i] = append(routesOf[i], target)
		}
	}
	if lag > 0 {
		p := delayProxy(t, ports[last], lag)
		advertise[last] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	servers := make([]*Server, n)
	for i := range servers {
		opts := Options(t.TempDir())
		opts.ServerName = fmt.Sprintf("n%d", i+1)
		opts.Cluster = server.ClusterOpts{Name: "test", Host: "127.0.0.1", Port: ports[i], Advertise: advertise[i], PoolSize: -1}
		opts.Routes = server.RoutesFromStr(strings.Join(routesOf[i], ","))
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		servers[i] = &Server{Server: s, opts: opts}
		t.Cleanup(servers[i].Stop)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("server %s not ready in 10s", s.Name())
		}
		for s.NumRoutes() < n-1 {
			if time.Now().After(deadline) {
				t.Fatalf("server %s: %d routes, want %d", s.Name(), s.NumRoutes(), n-1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for {
		for _, s := range servers {
			if s.JetStreamIsLeader() {
				return servers
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no JetStream meta leader in 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// delayProxy listens on a new port and forwards each connection to port,
// both ways, each chunk delivered lag after it arrived, in order.
func delayProxy(t testing.TB, port int, lag time.Duration) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			go delayCopy(out, in, lag)
			go delayCopy(in, out, lag)
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// delayCopy copies src to dst, holding each chunk for lag.
func delayCopy(dst io.WriteCloser, src io.ReadCloser, lag time.Duration) {
	type chunk struct {
		at time.Time
		b  []byte
	}
	chunks := make(chan chunk, 4096)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 32*1024)
			n, err := src.Read(buf)
			if n > 0 {
				chunks <- chunk{time.Now().Add(lag), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	defer dst.Close()
	defer src.Close()
	for c := range chunks {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.b); err != nil {
			return
		}
	}
}
