// Package certs makes the TLS material of the NATS servers: a private CA
// and one server certificate, signed by it, for every name the servers are
// reached by (clients and routes). ECDSA P-256, Go's standard library only,
// so it runs wherever Go does (`go run ./tools/cmd/certs`).
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DefaultNames are the names a NATS server of eventshop is reached by:
// the Helm release's client Service and its pods behind the headless Service
// (routes, namespace eventshop), the compose hosts, and loopback.
var DefaultNames = []string{
	"nats", "nats.eventshop", "nats.eventshop.svc", "nats.eventshop.svc.cluster.local",
	"*.nats-headless", "*.nats-headless.eventshop", "*.nats-headless.eventshop.svc", "*.nats-headless.eventshop.svc.cluster.local",
	"nats-1", "nats-2", "nats-3",
	"localhost", "127.0.0.1",
}

// Files are the names Make writes in its directory; the Kubernetes Secrets
// use the same keys (ca.crt in eventshop-nats-ca, tls.crt and tls.key in
// eventshop-nats-tls).
const (
	CACert     = "ca.crt"
	CAKey      = "ca.key"
	ServerCert = "tls.crt"
	ServerKey  = "tls.key"
)

// ErrExists is returned instead of overwriting existing files.
var ErrExists = errors.New("file exists")

// Options say what to make.
type Options struct {
	Names   []string      // DNS names and IP addresses of the server certificate
	Now     time.Time     // start of validity
	CAFor   time.Duration // CA validity
	CertFor time.Duration // server certificate validity
}

// Make writes a new CA and a server certificate signed by it into dir, and
// refuses to overwrite any of its files.
func Make(dir string, o Options) error {
	if len(o.Names) == 0 {
		return errors.New("no names for the server certificate")
	}
	if o.CAFor <= 0 || o.CertFor <= 0 {
		return errors.New("validity must be positive")
	}
	for _, f := range []string{CACert, CAKey, ServerCert, ServerKey} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("%s: %w (move the old files away to make new ones)", filepath.Join(dir, f), ErrExists)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("ca key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "eventshop NATS CA"},
		NotBefore:             o.Now.Add(-time.Hour),
		NotAfter:              o.Now.Add(o.CAFor),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("ca certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return fmt.Errorf("ca certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: o.Names[0]},
		NotBefore:    o.Now.Add(-time.Hour),
		NotAfter:     o.Now.Add(o.CertFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// Server for clients and for the routes it accepts; client for the
		// routes it solicits (mutual TLS on the cluster port).
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, n := range o.Names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	for _, f := range []struct {
		name string
		typ  string
		der  []byte
		mode os.FileMode
	}{
		{CACert, "CERTIFICATE", caDER, 0o644},
		{CAKey, "EC PRIVATE KEY", mustEC(caKey), 0o600},
		{ServerCert, "CERTIFICATE", der, 0o644},
		{ServerKey, "EC PRIVATE KEY", mustEC(key), 0o600},
	} {
		b := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		if err := os.WriteFile(filepath.Join(dir, f.name), b, f.mode); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)) // never fails (Go 1.24+)
	return n
}

func mustEC(k *ecdsa.PrivateKey) []byte {
	b, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		panic(err) // a P-256 key made above always marshals
	}
	return b
}
