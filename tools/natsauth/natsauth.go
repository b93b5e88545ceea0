// Package natsauth loads the production NATS configuration of eventshop
// (deployments/nats/nats.conf and the users and permissions of its auth.conf)
// for the programs that embed nats-server: `make run` and the end-to-end
// tests. Only where the server listens and stores is overridden, so
// development and tests enforce the same least-privilege users as
// production.
package natsauth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
)

// ConfigFile is the single-server configuration, relative to the repository
// root. It includes auth.conf.
const ConfigFile = "deployments/nats/nats.conf"

// Admin is the user with every permission, for operators and tests.
const Admin = "admin"

// Ops is the user of the one-shot setup step that creates the shared
// streams (DLQ, AUDIT) at stack start: it may create, update and read the
// configuration of those streams, and nothing else.
const Ops = "ops"

// User is one user defined in auth.conf.
type User struct {
	Name        string // NATS user name; a service's user is named after it
	PasswordEnv string // environment variable auth.conf reads the password from
}

// Users lists every user of auth.conf: one per service, ops, then the admin.
var Users = []User{
	{Name: "order-service", PasswordEnv: "NATS_PASSWORD_ORDER"},
	{Name: "inventory-service", PasswordEnv: "NATS_PASSWORD_INVENTORY"},
	{Name: "payment-service", PasswordEnv: "NATS_PASSWORD_PAYMENT"},
	{Name: "notification-service", PasswordEnv: "NATS_PASSWORD_NOTIFICATION"},
	{Name: "audit-service", PasswordEnv: "NATS_PASSWORD_AUDIT"},
	{Name: Ops, PasswordEnv: "NATS_PASSWORD_OPS"},
	{Name: Admin, PasswordEnv: "NATS_PASSWORD_ADMIN"},
}

// ErrUnknownUser is returned for a user auth.conf does not define.
var ErrUnknownUser = errors.New("unknown nats user")

// Passwords holds the password of every user, by user name.
type Passwords map[string]string

// NewPasswords returns a password for every user: the value of its
// environment variable when getenv has one, a fresh random one otherwise.
func NewPasswords(getenv func(string) string) Passwords {
	p := Passwords{}
	for _, u := range Users {
		if v := getenv(u.PasswordEnv); v != "" {
			p[u.Name] = v
			continue
		}
		b := make([]byte, 18)
		_, _ = rand.Read(b) // never fails (Go 1.24+)
		// nats-server parses an environment value as configuration: a
		// leading letter keeps it a string (never a number or a size).
		p[u.Name] = "pw" + hex.EncodeToString(b)
	}
	return p
}

// ClientEnv returns the environment that makes a service connect as user:
// NATS_USER and NATS_PASSWORD.
func (p Passwords) ClientEnv(user string) ([]string, error) {
	pw, ok := p[user]
	if !ok {
		return nil, fmt.Errorf("%q: %w", user, ErrUnknownUser)
	}
	return []string{"NATS_USER=" + user, "NATS_PASSWORD=" + pw}, nil
}

// Overrides says where an embedded server listens and stores; everything
// else comes from the configuration file.
type Overrides struct {
	Host     string // client listen host, e.g. 127.0.0.1
	Port     int    // client port; -1 picks a free one
	StoreDir string // JetStream store directory
	// HTTPPort is the monitoring port (on Host); 0 turns monitoring off,
	// -1 picks a free one.
	HTTPPort int
	// LogFile, if set, receives the server log (permission violations are
	// logged there); otherwise the server does not log.
	LogFile string
}

// envMu serialises the window in which the passwords are in the process
// environment.
var envMu sync.Mutex

// Options parses root/ConfigFile with the passwords in p and applies o.
// nats-server reads the $NATS_PASSWORD_* references of auth.conf from the
// environment, so the passwords are put there for the parse and removed
// again: child processes must not inherit every user's password.
func Options(root string, p Passwords, o Overrides) (*server.Options, error) {
	for _, u := range Users {
		if p[u.Name] == "" {
			return nil, fmt.Errorf("no password for nats user %s", u.Name)
		}
	}
	file := filepath.Join(root, ConfigFile)
	opts, err := parseWithEnv(file, p)
	if err != nil {
		return nil, err
	}
	if err := checkUsers(opts, p); err != nil {
		return nil, err
	}
	opts.Host = o.Host
	opts.Port = o.Port
	opts.StoreDir = o.StoreDir
	opts.HTTPHost = o.Host
	opts.HTTPPort = o.HTTPPort
	opts.NoSigs = true
	opts.LogFile = o.LogFile
	opts.NoLog = o.LogFile == ""
	return opts, nil
}

func parseWithEnv(file string, p Passwords) (*server.Options, error) {
	envMu.Lock()
	defer envMu.Unlock()
	type saved struct {
		value string
		set   bool
	}
	prev := map[string]saved{}
	for _, u := range Users {
		v, ok := os.LookupEnv(u.PasswordEnv)
		prev[u.PasswordEnv] = saved{v, ok}
		if err := os.Setenv(u.PasswordEnv, p[u.Name]); err != nil {
			return nil, fmt.Errorf("set %s: %w", u.PasswordEnv, err)
		}
	}
	defer func() {
		for name, s := range prev {
			if s.set {
				_ = os.Setenv(name, s.value) // restoring a value that was set before cannot fail
			} else {
				_ = os.Unsetenv(name) // nor can removing one
			}
		}
	}()
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		return nil, fmt.Errorf("nats config %s: %w", file, err)
	}
	return opts, nil
}

// checkUsers verifies that every user is defined with the password given:
// nats-server parses an environment value as configuration, so a password
// such as "123" (a number), "true" (a boolean) or "64k" (a size) would become
// something else.
func checkUsers(opts *server.Options, p Passwords) error {
	got := map[string]string{}
	for _, u := range opts.Users {
		got[u.Username] = u.Password
	}
	for _, u := range Users {
		pw, ok := got[u.Name]
		switch {
		case !ok:
			return fmt.Errorf("auth.conf does not define nats user %s", u.Name)
		case pw != p[u.Name]:
			return fmt.Errorf("nats-server reads %s as a different value: use letters and digits, starting with a letter", u.PasswordEnv)
		}
	}
	return nil
}
