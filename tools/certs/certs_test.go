package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

func makeCerts(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	if err := Make(dir, Options{Names: DefaultNames, Now: time.Now(), CAFor: 48 * time.Hour, CertFor: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestMakeRefusesToOverwrite(t *testing.T) {
	t.Parallel()
	dir := makeCerts(t)
	before, _ := os.ReadFile(filepath.Join(dir, CAKey))
	err := Make(dir, Options{Names: DefaultNames, Now: time.Now(), CAFor: time.Hour, CertFor: time.Hour})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Make over existing files = %v, want ErrExists", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, CAKey)); string(after) != string(before) {
		t.Fatal("the CA key was overwritten")
	}
}

// TestServerCertificateNames: the certificate verifies, against the CA
// alone, for every name a client or a route uses, as server and as client.
func TestServerCertificateNames(t *testing.T) {
	t.Parallel()
	dir := makeCerts(t)
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, ServerCert), filepath.Join(dir, ServerKey))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(dir, CACert))
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	for _, name := range []string{"nats.eventshop.svc", "nats", "nats-0.nats-headless", "nats-2.nats-headless.eventshop.svc.cluster.local", "nats-1", "localhost", "127.0.0.1"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("%s (usage %v): %v", name, usage, err)
			}
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "evil.example", Roots: roots}); err == nil {
		t.Error("the certificate verifies for a name it was not made for")
	}
}

// TestTLSCluster: two nats-servers with the made certificates, TLS required
// on the client port and mutual TLS on the routes (as the production Helm
// values configure them), route; a client that trusts the CA connects over
// tls://; one that does not trust the CA cannot.
func TestTLSCluster(t *testing.T) {
	t.Parallel()
	dir := makeCerts(t)
	tc := &server.TLSConfigOpts{
		CertFile: filepath.Join(dir, ServerCert), KeyFile: filepath.Join(dir, ServerKey), CaFile: filepath.Join(dir, CACert),
	}
	clientTLS, err := server.GenTLSConfig(tc)
	if err != nil {
		t.Fatal(err)
	}
	routeOpts := *tc
	routeOpts.Verify = true
	routeTLS, err := server.GenTLSConfig(&routeOpts)
	if err != nil {
		t.Fatal(err)
	}
	// A server soliciting a route is a TLS client: it verifies its peer
	// with the same CA, as nats-server's parser of a cluster tls block sets.
	routeTLS.RootCAs = routeTLS.ClientCAs
	start := func(name string, routes []*url.URL, cTLS, rTLS *tls.Config) *server.Server {
		opts := &server.Options{
			ServerName: name, Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
			TLSConfig: cTLS, TLS: cTLS != nil, TLSTimeout: 2,
			Cluster: server.ClusterOpts{
				Name: "eventshop", Host: "localhost", Port: -1, Username: "route", Password: "pwroute",
				TLSConfig: rTLS, TLSTimeout: 2,
			},
			Routes: routes,
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(s.Shutdown)
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("%s not ready", name)
		}
		return s
	}
	a := start("a", nil, clientTLS, routeTLS)
	routeToA := &url.URL{Scheme: "nats-route", User: url.UserPassword("route", "pwroute"), Host: fmt.Sprintf("localhost:%d", a.ClusterAddr().Port)}
	b := start("b", []*url.URL{routeToA}, clientTLS, routeTLS)
	for a.NumRoutes() == 0 || b.NumRoutes() == 0 {
		time.Sleep(20 * time.Millisecond) // the test's timeout bounds it
	}

	port := a.Addr().(*net.TCPAddr).Port
	nc, err := nats.Connect(fmt.Sprintf("tls://localhost:%d", port), nats.RootCAs(filepath.Join(dir, CACert)))
	if err != nil {
		t.Fatalf("a client trusting the CA: %v", err)
	}
	nc.Close()
	if nc, err := nats.Connect(fmt.Sprintf("tls://localhost:%d", port)); err == nil {
		nc.Close()
		t.Error("a client that does not trust the CA connected")
	}
	if nc, err := nats.Connect(fmt.Sprintf("nats://localhost:%d", port)); err == nil && !nc.TLSRequired() {
		nc.Close()
		t.Error("a client connected without TLS")
	}
}
