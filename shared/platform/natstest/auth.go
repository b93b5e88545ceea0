package natstest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// AuthUsers maps every user of deployments/nats/auth.conf to the variable
// its password is read from (tools/natsauth.Users is the same list; shared
// does not depend on tools).
var AuthUsers = map[string]string{
	"order-service":        "NATS_PASSWORD_ORDER",
	"inventory-service":    "NATS_PASSWORD_INVENTORY",
	"payment-service":      "NATS_PASSWORD_PAYMENT",
	"notification-service": "NATS_PASSWORD_NOTIFICATION",
	"audit-service":        "NATS_PASSWORD_AUDIT",
	"ops":                  "NATS_PASSWORD_OPS",
	"admin":                "NATS_PASSWORD_ADMIN",
}

// AuthServer is an embedded server running the production users and
// permissions (deployments/nats/nats.conf, which includes auth.conf).
type AuthServer struct {
	*Server
	passwords map[string]string
}

// StartAuth starts, for t, a server from the repository's
// deployments/nats/nats.conf with only where it listens and stores
// overridden, so a test meets the permissions production enforces. It
// sets the password variables with t.Setenv: a test calling it cannot be
// parallel.
func StartAuth(t *testing.T) *AuthServer {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	pw := map[string]string{}
	for user, env := range AuthUsers {
		b := make([]byte, 12)
		_, _ = rand.Read(b)                     // never fails (Go 1.24+)
		pw[user] = "pw" + hex.EncodeToString(b) // a letter first: parsed as a string
		t.Setenv(env, pw[user])
	}
	opts, err := server.ProcessConfigFile(filepath.Join(root, "deployments", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
	opts.StoreDir = t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	s, err := Run(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return &AuthServer{Server: s, passwords: pw}
}

// ConnectAs connects to s as user, with the inbox prefix the services use
// (natsconn.InboxPrefix), and closes the connection when t ends.
func (s *AuthServer) ConnectAs(t testing.TB, user string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	pw, ok := s.passwords[user]
	if !ok {
		t.Fatalf("auth.conf has no user %q", user)
	}
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(user, pw), nats.CustomInboxPrefix("_INBOX_"+user))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// repoRoot is the nearest directory above the working directory that holds
// go.work.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory: run the test inside the repository")
		}
		dir = parent
	}
}

// Password returns user's password on s (to hand to a service's config).
func (s *AuthServer) Password(user string) string { return s.passwords[user] }
