package natsauth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestConfigFiles parses every production configuration with the real
// nats-server parser, as the server binary would at start-up.
func TestConfigFiles(t *testing.T) {
	setClusterEnv(t) // the users' passwords, and the cluster's route password and routes
	tests := []struct {
		file       string
		serverName string
		cluster    bool
	}{
		{"deployments/nats/nats.conf", "eventshop-nats", false},
		{"deployments/nats/cluster/nats-1.conf", "nats-1", true},
		{"deployments/nats/cluster/nats-2.conf", "nats-2", true},
		{"deployments/nats/cluster/nats-3.conf", "nats-3", true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			opts, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if opts.ServerName != tt.serverName || opts.Port != 4222 || opts.HTTPPort != 8222 {
				t.Errorf("server %q port %d http %d, want %q 4222 8222", opts.ServerName, opts.Port, opts.HTTPPort, tt.serverName)
			}
			if !opts.JetStream || opts.StoreDir != "/data" || !opts.SyncAlways {
				t.Errorf("jetstream %v store %q sync always %v, want on, /data, always", opts.JetStream, opts.StoreDir, opts.SyncAlways)
			}
			if tt.cluster {
				var routes []string
				for _, r := range opts.Routes {
					routes = append(routes, r.Host)
				}
				if opts.Cluster.Name != "eventshop" || opts.Cluster.Port != 6222 ||
					!slices.Equal(routes, []string{"nats-1:6222", "nats-2:6222", "nats-3:6222"}) {
					t.Errorf("cluster %q port %d routes %v", opts.Cluster.Name, opts.Cluster.Port, routes)
				}
			}
			checkUserSet(t, opts)
		})
	}
}

func checkUserSet(t *testing.T, opts *server.Options) {
	t.Helper()
	if opts.NoAuthUser != "" || len(opts.Nkeys) != 0 {
		t.Errorf("no_auth_user %q, %d nkeys: every client must log in as a user", opts.NoAuthUser, len(opts.Nkeys))
	}
	byName := map[string]*server.User{}
	for _, u := range opts.Users {
		byName[u.Username] = u
	}
	if len(byName) != len(Users) {
		t.Errorf("%d users, want %d", len(byName), len(Users))
	}
	for _, want := range Users {
		u, ok := byName[want.Name]
		if !ok {
			t.Errorf("user %s missing", want.Name)
			continue
		}
		if u.Password != "pw"+strings.ReplaceAll(want.Name, "-", "") {
			t.Errorf("user %s password not read from $%s", want.Name, want.PasswordEnv)
		}
		if want.Name == Admin {
			if u.Permissions != nil {
				t.Errorf("admin has restricted permissions %+v", u.Permissions)
			}
			continue
		}
		p := u.Permissions
		if p == nil || p.Publish == nil || len(p.Publish.Allow) == 0 || p.Subscribe == nil {
			t.Errorf("service user %s has no publish/subscribe restrictions", want.Name)
			continue
		}
		if inbox := "_INBOX_" + want.Name + ".>"; !slices.Equal(p.Subscribe.Allow, []string{inbox}) {
			t.Errorf("%s may subscribe to %v, want only its own inboxes %s", want.Name, p.Subscribe.Allow, inbox)
		}
		for _, s := range p.Publish.Allow {
			if s == ">" || strings.HasPrefix(s, "_INBOX") || s == "$JS.API.>" {
				t.Errorf("%s may publish to %q", want.Name, s)
			}
		}
	}
}

func TestMissingPasswordRefused(t *testing.T) {
	for _, u := range Users {
		t.Setenv(u.PasswordEnv, "pwx")
	}
	os.Unsetenv("NATS_PASSWORD_PAYMENT") // t.Setenv restores it
	_, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), ConfigFile))
	if err == nil || !strings.Contains(err.Error(), "NATS_PASSWORD_PAYMENT") {
		t.Fatalf("parse without $NATS_PASSWORD_PAYMENT: err = %v, want a missing variable error", err)
	}
}

func TestOptionsRejectsPasswordsTheParserChanges(t *testing.T) {
	tests := []struct {
		name     string
		password string
		wantErr  bool
	}{
		{"generated", NewPasswords(func(string) string { return "" })["admin"], false},
		{"letters and digits", "Secret42", false},
		{"a number", "12345", true},
		{"a boolean word", "true", true},
		{"a size", "64k", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pw := NewPasswords(func(string) string { return "" })
			pw["order-service"] = tt.password
			_, err := Options(repoRoot(t), pw, Overrides{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir()})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Options with password %q: err = %v, wantErr %v", tt.password, err, tt.wantErr)
			}
		})
	}
}

func TestNewPasswordsPrefersEnvironment(t *testing.T) {
	t.Parallel()
	pw := NewPasswords(func(k string) string {
		if k == "NATS_PASSWORD_AUDIT" {
			return "fromEnv1"
		}
		return ""
	})
	if pw["audit-service"] != "fromEnv1" {
		t.Errorf("audit password = %q, want the environment's", pw["audit-service"])
	}
	if pw["order-service"] == "" || pw["order-service"] == pw["payment-service"] {
		t.Errorf("generated passwords empty or shared: %v", pw)
	}
	env, err := pw.ClientEnv("audit-service")
	if err != nil || !slices.Equal(env, []string{"NATS_USER=audit-service", "NATS_PASSWORD=fromEnv1"}) {
		t.Errorf("ClientEnv = %v, %v", env, err)
	}
	if _, err := pw.ClientEnv("nobody"); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("ClientEnv(nobody) err = %v, want ErrUnknownUser", err)
	}
}

// authServer runs the real configuration on a random port.
type authServer struct {
	srv *server.Server
	pw  Passwords
}

func startServer(t *testing.T) *authServer {
	t.Helper()
	pw := NewPasswords(func(string) string { return "" })
	opts, err := Options(repoRoot(t), pw, Overrides{Host: "127.0.0.1", Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return &authServer{srv: srv, pw: pw}
}

// conn is a client connection that collects the server's asynchronous
// errors (permission violations arrive that way).
type conn struct {
	nc *nats.Conn
	js jetstream.JetStream

	mu   sync.Mutex
	errs []error
}

func (s *authServer) connect(t *testing.T, user string) *conn {
	t.Helper()
	c := &conn{}
	// The inbox prefix the services connect with (shared natsconn.Connect:
	// "_INBOX_<user>"; tools does not depend on the shared module).
	nc, err := nats.Connect(s.srv.ClientURL(), nats.UserInfo(user, s.pw[user]), nats.CustomInboxPrefix("_INBOX_"+user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			c.errs = append(c.errs, err)
			c.mu.Unlock()
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c.nc, c.js = nc, js
	return c
}

// violated reports whether the server refused something mentioning subject.
func (c *conn) violated(subject string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, err := range c.errs {
		if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subject) {
			return true
		}
	}
	return false
}

func waitViolation(t *testing.T, c *conn, subject string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !c.violated(subject) {
		if time.Now().After(deadline) {
			t.Fatalf("no permissions violation reported for %s", subject)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// setUp creates, as admin, the streams and buckets the services would.
func setUp(t *testing.T, admin *conn) {
	t.Helper()
	ctx := context.Background()
	for name, subj := range map[string]string{
		"ORDERS": "orders.>", "INVENTORY": "inventory.>", "PAYMENTS": "payments.>",
		"NOTIFICATIONS": "notifications.>", "AUDIT": "audit.>",
	} {
		if _, err := admin.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}, AllowDirect: true}); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []string{"orders", "inventory", "payments", "notifications"} {
		kv, err := admin.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: b})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, "o-1", []byte(`{"secret":"`+b+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
}

// stored reports whether a stream holds a message on subject, read as admin.
func stored(t *testing.T, admin *conn, stream, subject string) bool {
	t.Helper()
	s, err := admin.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.GetLastMsgForSubject(context.Background(), subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// TestServiceMayPublishOnlyItsOwnEvents proves the server enforces the
// domain boundaries: a service can append to its own stream and nobody
// else's.
func TestServiceMayPublishOnlyItsOwnEvents(t *testing.T) {
	s := startServer(t)
	admin := s.connect(t, Admin)
	setUp(t, admin)
	tests := []struct {
		user    string
		stream  string
		subject string
		allowed bool
	}{
		{"order-service", "ORDERS", "orders.o-1.created", true},
		{"order-service", "INVENTORY", "inventory.o-1.reserved", false},
		{"order-service", "PAYMENTS", "payments.o-1.succeeded", false},
		{"inventory-service", "INVENTORY", "inventory.o-2.reserved", true},
		{"inventory-service", "ORDERS", "orders.o-2.confirmed", false},
		{"payment-service", "PAYMENTS", "payments.o-3.succeeded", true},
		{"payment-service", "ORDERS", "orders.o-3.confirmed", false},
		{"notification-service", "NOTIFICATIONS", "notifications.o-4.sent", true},
		{"notification-service", "ORDERS", "orders.o-4.cancelled", false},
		{"audit-service", "AUDIT", "audit.o-5.1", true},
		{"audit-service", "PAYMENTS", "payments.o-5.failed", false},
		{"payment-service", "AUDIT", "audit.o-5.2", false},
	}
	for _, tt := range tests {
		t.Run(tt.user+" to "+tt.subject, func(t *testing.T) {
			t.Parallel()
			c := s.connect(t, tt.user)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := c.js.Publish(ctx, tt.subject, []byte(`{}`))
			if tt.allowed {
				if err != nil {
					t.Fatalf("publish: %v", err)
				}
				if !stored(t, admin, tt.stream, tt.subject) {
					t.Fatal("acknowledged but not stored")
				}
				return
			}
			if err == nil {
				t.Fatal("publish acknowledged, want refused")
			}
			t.Logf("refused: %v", err)
			waitViolation(t, c, tt.subject)
			if stored(t, admin, tt.stream, tt.subject) {
				t.Fatalf("%s stored a refused message on %s", tt.stream, tt.subject)
			}
		})
	}
}

// TestServiceCannotTouchOtherBuckets: a service can neither read nor write
// a bucket it does not own.
func TestServiceCannotTouchOtherBuckets(t *testing.T) {
	s := startServer(t)
	admin := s.connect(t, Admin)
	setUp(t, admin)
	tests := []struct {
		user, bucket string
		allowed      bool
	}{
		{"payment-service", "payments", true},
		{"payment-service", "orders", false},
		{"notification-service", "notifications", true},
		{"notification-service", "orders", false},
		{"order-service", "payments", false},
		{"audit-service", "inventory", false},
	}
	for _, tt := range tests {
		t.Run(tt.user+" on "+tt.bucket, func(t *testing.T) {
			t.Parallel()
			c := s.connect(t, tt.user)
			ctx := context.Background()
			get := "$JS.API.DIRECT.GET.KV_" + tt.bucket + ".$KV." + tt.bucket + ".o-1"
			msg, getErr := c.nc.Request(get, nil, time.Second)
			put := "$KV." + tt.bucket + ".o-1"
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			_, putErr := c.js.Publish(pctx, put, []byte(`{"secret":"overwritten by `+tt.user+`"}`))
			if tt.allowed {
				if getErr != nil || !strings.Contains(string(msg.Data), tt.bucket) || putErr != nil {
					t.Fatalf("own bucket: get %v (%q), put %v", getErr, msgData(msg), putErr)
				}
				return
			}
			if getErr == nil {
				t.Fatalf("read %s: got %q, want refused", tt.bucket, msg.Data)
			}
			if putErr == nil {
				t.Fatalf("write to %s acknowledged, want refused", tt.bucket)
			}
			waitViolation(t, c, get)
			waitViolation(t, c, put)
			kv, err := admin.js.KeyValue(ctx, tt.bucket)
			if err != nil {
				t.Fatal(err)
			}
			e, err := kv.Get(ctx, "o-1")
			if err != nil || strings.Contains(string(e.Value()), tt.user) {
				t.Fatalf("bucket %s after a refused write: %v %q", tt.bucket, err, e.Value())
			}
		})
	}
}

func msgData(m *nats.Msg) string {
	if m == nil {
		return ""
	}
	return string(m.Data)
}

// TestServiceCannotSubscribeToEvents: events reach a service only through
// its durable consumers, never by a plain subscription.
func TestServiceCannotSubscribeToEvents(t *testing.T) {
	s := startServer(t)
	c := s.connect(t, "order-service")
	if _, err := c.nc.SubscribeSync("payments.>"); err != nil {
		t.Fatal(err)
	}
	waitViolation(t, c, "payments.>")
}

func TestLoginRequired(t *testing.T) {
	s := startServer(t)
	tests := []struct {
		name string
		opts []nats.Option
	}{
		{"anonymous", nil},
		{"wrong password", []nats.Option{nats.UserInfo("order-service", "guess")}},
		{"another user's password", []nats.Option{nats.UserInfo("order-service", s.pw[Admin])}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			nc, err := nats.Connect(s.srv.ClientURL(), tt.opts...)
			if err == nil {
				nc.Close()
				t.Fatal("connected, want an authorization violation")
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Fatalf("err = %v, want nats.ErrAuthorization", err)
			}
		})
	}
}

// TestDeadLettersAreManagedByTheStreamOwner: a service reads and resolves
// the dead letters of its own stream's messages, whichever consumer wrote
// them, and no others; it creates and consumes its advisory capture stream.
func TestDeadLettersAreManagedByTheStreamOwner(t *testing.T) {
	s := startServer(t)
	admin := s.connect(t, Admin)
	setUp(t, admin)
	ctx := context.Background()
	if _, err := admin.js.CreateStream(ctx, jetstream.StreamConfig{Name: "DLQ", Subjects: []string{"dlq.>"}, AllowDirect: true}); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"dlq.inventory-orders.ORDERS.1", "dlq.order-inventory.INVENTORY.1"} {
		if _, err := admin.js.Publish(ctx, subj, []byte(`{"payment_token":"tok"}`)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		user, letter string
		allowed      bool
	}{
		{"order-service", "dlq.inventory-orders.ORDERS.1", true},
		{"order-service", "dlq.order-inventory.INVENTORY.1", false},
		{"inventory-service", "dlq.order-inventory.INVENTORY.1", true},
		{"inventory-service", "dlq.inventory-orders.ORDERS.1", false},
		{"notification-service", "dlq.inventory-orders.ORDERS.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.user+" reads "+tt.letter, func(t *testing.T) {
			t.Parallel()
			c := s.connect(t, tt.user)
			get := "$JS.API.DIRECT.GET.DLQ." + tt.letter
			msg, err := c.nc.Request(get, nil, time.Second)
			if tt.allowed {
				if err != nil || !strings.Contains(string(msg.Data), "tok") {
					t.Fatalf("read own stream's letter: %v %q", err, msgData(msg))
				}
				return
			}
			if err == nil {
				t.Fatalf("read %s: got %q, want refused", tt.letter, msg.Data)
			}
			waitViolation(t, c, get)
		})
	}

	c := s.connect(t, "order-service")
	capture := jetstream.StreamConfig{
		Name:      "DLQ_ADVISORIES_ORDER",
		Subjects:  []string{"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.INVENTORY.order-inventory"},
		Retention: jetstream.WorkQueuePolicy,
		NoAck:     true,
	}
	if _, err := c.js.CreateOrUpdateStream(ctx, capture); err != nil {
		t.Fatalf("order-service creates its capture stream: %v", err)
	}
	capture.Name = "DLQ_ADVISORIES_PAYMENT"
	capture.Subjects = []string{"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.INVENTORY.payment-inventory"}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := c.js.CreateOrUpdateStream(short, capture); err == nil {
		t.Fatal("order-service created the payment service's capture stream")
	}
	waitViolation(t, c, "$JS.API.STREAM.UPDATE.DLQ_ADVISORIES_PAYMENT")
}

// TestServiceCannotReadAnotherServicesInbox: replies (API responses, publish
// acks, consumer deliveries) arrive in _INBOX_<user>.>, and a service may
// subscribe only to its own.
func TestServiceCannotReadAnotherServicesInbox(t *testing.T) {
	s := startServer(t)
	c := s.connect(t, "order-service")
	for _, subject := range []string{"_INBOX_payment-service.>", "_INBOX.>"} {
		if _, err := c.nc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		if err := c.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		waitViolation(t, c, subject)
	}
}
