package stack

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATS is an embedded nats-server that can be shut down and started again
// on the same ports and store directory, as a restarted nats-server process
// would be: clients reconnect to the same URL and JetStream recovers its
// streams and consumers from the store.
type NATS struct {
	opts  *server.Options
	ready time.Duration

	mu  sync.Mutex
	srv *server.Server
	url string
}

// StartNATS checks that the ports of opts are free, then starts a server
// with them and waits up to ready for it to accept connections. A client
// port of -1 picks a free one, which later restarts keep.
func StartNATS(opts *server.Options, ready time.Duration) (*NATS, error) {
	for _, port := range []int{opts.Port, opts.HTTPPort} {
		if port <= 0 {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(opts.Host, strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("nats port %d is taken (is another devstack or nats-server running?): %w", port, err)
		}
		ln.Close()
	}
	n := &NATS{opts: opts.Clone(), ready: ready}
	if err := n.Start(); err != nil {
		return nil, err
	}
	return n, nil
}

// Start starts the server if it is not running.
func (n *NATS) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return nil
	}
	// A server must not be given Options another one holds.
	s, err := server.NewServer(n.opts.Clone())
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	s.ConfigureLogger()
	go s.Start()
	if !s.ReadyForConnections(n.ready) {
		s.Shutdown()
		s.WaitForShutdown()
		where := "no log"
		if n.opts.LogFile != "" {
			where = "see " + n.opts.LogFile
		}
		return fmt.Errorf("nats-server not ready in %s (%s)", n.ready, where)
	}
	if n.opts.Port == -1 {
		// Keep the port the server picked, so a restart is found at the
		// same URL.
		if addr, ok := s.Addr().(*net.TCPAddr); ok {
			n.opts.Port = addr.Port
		}
	}
	n.srv, n.url = s, s.ClientURL()
	return nil
}

// Shutdown stops the server, as a crash of the nats-server process would
// (clients see their connection drop), and waits until it is gone.
func (n *NATS) Shutdown() {
	n.mu.Lock()
	s := n.srv
	n.srv = nil
	n.mu.Unlock()
	if s == nil {
		return
	}
	s.Shutdown()
	s.WaitForShutdown()
}

// Restart shuts the server down, waits down, and starts it again.
func (n *NATS) Restart(down time.Duration) error {
	n.Shutdown()
	time.Sleep(down)
	return n.Start()
}

// Running reports whether the server is running.
func (n *NATS) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv != nil
}

// ClientURL returns the URL clients connect to; it stays the same across
// restarts.
func (n *NATS) ClientURL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.url
}

// Server returns the running server, or nil.
func (n *NATS) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}
