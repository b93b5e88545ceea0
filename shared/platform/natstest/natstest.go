// Package natstest starts a real, embedded nats-server with JetStream for
// tests (never a mock of NATS), and waits for the eventual outcomes tests
// assert: a state reached, a message dead-lettered.
package natstest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is an embedded nats-server that can be stopped and restarted on the
// same port and store directory, as a crashed broker would be.
type Server struct {
	*server.Server
	opts *server.Options
}

// Options returns the server options tests usually want: a random port,
// JetStream on, file storage under dir.
func Options(dir string) *server.Options {
	return &server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	}
}

// Run starts a server with opts and waits until it accepts connections.
func Run(opts *server.Options) (*Server, error) {
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("new nats-server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats-server not ready in 10s")
	}
	// Pin the chosen port so Restart comes back on the same address.
	o := *opts
	if addr, ok := s.Addr().(*net.TCPAddr); ok {
		o.Port = addr.Port
	}
	return &Server{Server: s, opts: &o}, nil
}

// Start starts an embedded server for t with JetStream on file storage in a
// temporary directory, and shuts it down when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Run(Options(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Stop shuts the server down and waits for it.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
}

// Restart stops the server and starts a new one on the same port and store.
func (s *Server) Restart() error {
	s.Stop()
	ns, err := server.NewServer(s.opts)
	if err != nil {
		return fmt.Errorf("restart nats-server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("restarted nats-server not ready in 10s")
	}
	s.Server = ns
	return nil
}

// Connect opens a client connection and JetStream context to s for t.
func Connect(t testing.TB, s *Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}
