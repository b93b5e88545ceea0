package natsauth

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// clusterFiles are the shipped node configurations of the 3-node cluster.
var clusterFiles = []string{
	"deployments/nats/cluster/nats-1.conf",
	"deployments/nats/cluster/nats-2.conf",
	"deployments/nats/cluster/nats-3.conf",
}

// setClusterEnv puts into the environment what docker-compose.cluster.yml
// gives every node: the users' passwords, a generated route password and
// the route list built from it. It returns the route password.
func setClusterEnv(t *testing.T) string {
	t.Helper()
	for _, u := range Users {
		t.Setenv(u.PasswordEnv, "pw"+strings.ReplaceAll(u.Name, "-", ""))
	}
	b := make([]byte, 18)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	pw := "pw" + hex.EncodeToString(b)
	t.Setenv("NATS_CLUSTER_PASSWORD", pw)
	var routes []string
	for n := 1; n <= 3; n++ {
		routes = append(routes, fmt.Sprintf("nats-route://route:%s@nats-%d:6222", pw, n))
	}
	t.Setenv("NATS_CLUSTER_ROUTES", "["+strings.Join(routes, ", ")+"]")
	return pw
}

// authLog is a server logger that counts the authentication errors the
// server reports about route connections (a server that tried to route in
// with no or wrong credentials).
type authLog struct {
	mu       sync.Mutex
	refusals int
	changed  chan struct{}
}

func newAuthLog() *authLog { return &authLog{changed: make(chan struct{}, 1)} }

func (l *authLog) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.Contains(msg, "rid:") && strings.Contains(strings.ToLower(msg), "authentication error") {
		l.mu.Lock()
		l.refusals++
		l.mu.Unlock()
		select {
		case l.changed <- struct{}{}:
		default:
		}
	}
}
func (l *authLog) Noticef(string, ...any) {}
func (l *authLog) Warnf(string, ...any)   {}
func (l *authLog) Fatalf(string, ...any)  {}
func (l *authLog) Debugf(string, ...any)  {}
func (l *authLog) Tracef(string, ...any)  {}

func (l *authLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refusals
}

func freeClusterPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startShippedCluster starts the three nodes from the shipped configuration
// files, as the server binary would parse them, with only where they listen
// and store changed: each route keeps the credentials the configuration
// gives it, its host nats-N:6222 becomes a local port.
func startShippedCluster(t *testing.T, logs []*authLog) []*server.Server {
	t.Helper()
	root := repoRoot(t)
	ports := map[string]int{}
	for n := 1; n <= 3; n++ {
		ports[fmt.Sprintf("nats-%d:6222", n)] = freeClusterPort(t)
	}
	servers := make([]*server.Server, len(clusterFiles))
	for i, f := range clusterFiles {
		opts, err := server.ProcessConfigFile(filepath.Join(root, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		self := fmt.Sprintf("nats-%d:6222", i+1)
		opts.Host, opts.Port = "127.0.0.1", -1
		opts.HTTPPort = 0
		opts.StoreDir = t.TempDir()
		opts.NoSigs, opts.NoLog = true, true
		opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", ports[self]
		var routes []*url.URL
		for _, r := range opts.Routes {
			p, ok := ports[r.Host]
			if !ok {
				t.Fatalf("%s: route to %s, not a node of the cluster", f, r.Redacted())
			}
			u := *r
			u.Host = fmt.Sprintf("127.0.0.1:%d", p)
			routes = append(routes, &u)
		}
		opts.Routes = routes
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		s.SetLoggerV2(logs[i], false, false, false)
		go s.Start()
		t.Cleanup(s.Shutdown)
		servers[i] = s
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("server %s not ready", s.Name())
		}
		for peers(t, s) < len(servers)-1 {
			if time.Now().After(deadline) {
				t.Fatalf("server %s routed to %d nodes, want %d: the shipped route credentials do not work",
					s.Name(), peers(t, s), len(servers)-1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return servers
}

// peers counts the distinct servers s has a route to.
func peers(t *testing.T, s *server.Server) int {
	t.Helper()
	rz, err := s.Routez(nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range rz.Routes {
		ids[r.RemoteID] = true
	}
	return len(ids)
}

// TestClusterRefusesRogueServer: a server that reaches the route port of a
// node of the shipped cluster, without the route password, must not become
// a member. A member receives every message published in the cluster (order
// events with payment tokens) and publishes into it as if it were a
// service, with no user of auth.conf: its own clients are anonymous.
func TestClusterRefusesRogueServer(t *testing.T) {
	pw := setClusterEnv(t)
	logs := []*authLog{newAuthLog(), newAuthLog(), newAuthLog()}
	cluster := startShippedCluster(t, logs)
	target := cluster[0]
	targetRoute := fmt.Sprintf("127.0.0.1:%d", target.ClusterAddr().Port)

	tests := []struct {
		name string
		user *url.Userinfo
	}{
		{"no credentials", nil},
		{"wrong password", url.UserPassword("route", pw+"x")},
		{"another user", url.UserPassword("admin", pw)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := logs[0].count()
			rogue, rc := startRogue(t, &url.URL{Scheme: "nats-route", User: tt.user, Host: targetRoute})
			leak, err := rc.SubscribeSync("orders.>")
			if err != nil {
				t.Fatal(err)
			}
			if err := rc.Flush(); err != nil {
				t.Fatal(err)
			}

			// Either the rogue routes in or the node refuses it.
			deadline := time.After(30 * time.Second)
			for logs[0].count() == before && peers(t, rogue) == 0 {
				select {
				case <-logs[0].changed:
				case <-time.After(20 * time.Millisecond):
				case <-deadline:
					t.Fatal("the rogue server neither routed in nor was refused in 30s")
				}
			}
			if n := peers(t, rogue); n > 0 {
				got := leaked(t, cluster[1], leak)
				t.Fatalf("a server without the route password routed into the cluster (routes to %d nodes); "+
					"its anonymous client received %q published in the cluster", n, got)
			}
			if n := peers(t, target); n != len(cluster)-1 {
				t.Errorf("%s has routes to %d servers, want only the %d other nodes", target.Name(), n, len(cluster)-1)
			}
			// Published in the cluster now: nothing can reach a server with
			// no route.
			publishOrder(t, cluster[1])
			if err := rc.Flush(); err != nil {
				t.Fatal(err)
			}
			if n, _, _ := leak.Pending(); n != 0 {
				t.Errorf("the rogue's client received %d messages published in the cluster", n)
			}
		})
	}
}

// startRogue starts a server with no users and no route password that
// solicits route, and connects an anonymous client to it.
func startRogue(t *testing.T, route *url.URL) (*server.Server, *nats.Conn) {
	t.Helper()
	opts := &server.Options{
		ServerName: "rogue",
		Host:       "127.0.0.1",
		Port:       -1,
		NoSigs:     true,
		NoLog:      true,
		Cluster:    server.ClusterOpts{Name: "eventshop", Host: "127.0.0.1", Port: -1},
		Routes:     []*url.URL{route},
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("rogue server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return s, nc
}

// publishOrder publishes an order event carrying a payment token on s, as
// the admin user.
func publishOrder(t *testing.T, s *server.Server) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(Admin, "pwadmin"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish("orders.o-1.created", []byte(`{"payment_token":"tok_visa"}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// leaked publishes order events in the cluster until the rogue's
// subscription receives one, and returns what it received (for the failure
// message of a rogue that got in).
func leaked(t *testing.T, s *server.Server, sub *nats.Subscription) string {
	t.Helper()
	for range 50 {
		publishOrder(t, s)
		if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
			return m.Subject + " " + string(m.Data)
		}
	}
	return "nothing (yet)"
}

// TestClusterConfigRequiresRoutePassword: every node asks a routing server
// for the route user and password, and gives them on every route it
// solicits; without $NATS_CLUSTER_PASSWORD it does not start.
func TestClusterConfigRequiresRoutePassword(t *testing.T) {
	pw := setClusterEnv(t)
	for _, f := range clusterFiles {
		t.Run(f, func(t *testing.T) {
			opts, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), f))
			if err != nil {
				t.Fatal(err)
			}
			if opts.Cluster.Username != "route" || opts.Cluster.Password != pw {
				t.Errorf("cluster authorization user %q, password from $NATS_CLUSTER_PASSWORD %v; want user route and the password",
					opts.Cluster.Username, opts.Cluster.Password == pw)
			}
			if len(opts.Routes) != 3 {
				t.Errorf("%d routes, want 3", len(opts.Routes))
			}
			for _, r := range opts.Routes {
				got, _ := r.User.Password()
				if r.User == nil || r.User.Username() != "route" || got != pw {
					t.Errorf("route %s does not carry the route user and password", r.Redacted())
				}
			}
		})
	}
	t.Run("no password", func(t *testing.T) {
		t.Setenv("NATS_CLUSTER_PASSWORD", "")
		os.Unsetenv("NATS_CLUSTER_PASSWORD") // t.Setenv restores it
		_, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), clusterFiles[0]))
		if err == nil || !strings.Contains(err.Error(), "NATS_CLUSTER_PASSWORD") {
			t.Errorf("parsed without $NATS_CLUSTER_PASSWORD (err %v), want a refusal that names it", err)
		}
	})
}

// TestMonitoringOnLoopback: the shipped configurations serve monitoring
// (/connz lists every connection, user and subscription) on loopback only.
// The compose wrappers (deployments/nats/compose/) bind it inside the
// container, where only the host's loopback and the project's network
// reach it; they must add nothing else.
func TestMonitoringOnLoopback(t *testing.T) {
	setClusterEnv(t)
	tests := []struct {
		file     string
		wantHost string
	}{
		{"deployments/nats/nats.conf", "127.0.0.1"},
		{"deployments/nats/cluster/nats-1.conf", "127.0.0.1"},
		{"deployments/nats/cluster/nats-2.conf", "127.0.0.1"},
		{"deployments/nats/cluster/nats-3.conf", "127.0.0.1"},
		{"deployments/nats/compose/nats.conf", "0.0.0.0"},
		{"deployments/nats/compose/nats-1.conf", "0.0.0.0"},
		{"deployments/nats/compose/nats-2.conf", "0.0.0.0"},
		{"deployments/nats/compose/nats-3.conf", "0.0.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			opts, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if opts.HTTPHost != tt.wantHost || opts.HTTPPort != 8222 || opts.HTTPSPort != 0 {
				t.Errorf("monitoring on %s:%d (https %d), want %s:8222", opts.HTTPHost, opts.HTTPPort, opts.HTTPSPort, tt.wantHost)
			}
			if strings.Contains(tt.file, "/compose/") {
				base := strings.Replace(tt.file, "/compose/", "/", 1)
				if strings.HasSuffix(base, "/nats-1.conf") || strings.HasSuffix(base, "/nats-2.conf") || strings.HasSuffix(base, "/nats-3.conf") {
					base = strings.Replace(tt.file, "/compose/", "/cluster/", 1)
				}
				want, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), base))
				if err != nil {
					t.Fatal(err)
				}
				want.HTTPHost = opts.HTTPHost
				want.ConfigFile, opts.ConfigFile = "", ""
				if !equalOpts(want, opts) {
					t.Errorf("%s differs from %s in more than where monitoring listens", tt.file, base)
				}
			}
		})
	}
}

// equalOpts compares what a compose wrapper could change by mistake: the
// server, its storage, its cluster and its users.
func equalOpts(a, b *server.Options) bool {
	users := func(o *server.Options) string {
		var s []string
		for _, u := range o.Users {
			s = append(s, fmt.Sprintf("%s:%s:%v", u.Username, u.Password, u.Permissions != nil))
		}
		return strings.Join(s, ",")
	}
	routes := func(o *server.Options) string {
		var s []string
		for _, r := range o.Routes {
			s = append(s, r.String())
		}
		return strings.Join(s, ",")
	}
	return a.ServerName == b.ServerName && a.Host == b.Host && a.Port == b.Port &&
		a.HTTPHost == b.HTTPHost && a.HTTPPort == b.HTTPPort &&
		a.JetStream == b.JetStream && a.StoreDir == b.StoreDir && a.SyncAlways == b.SyncAlways &&
		a.Cluster.Name == b.Cluster.Name && a.Cluster.Host == b.Cluster.Host && a.Cluster.Port == b.Cluster.Port &&
		a.Cluster.Username == b.Cluster.Username && a.Cluster.Password == b.Cluster.Password &&
		routes(a) == routes(b) && users(a) == users(b) && a.NoAuthUser == b.NoAuthUser
}
