// Package natsconn opens the NATS connection and JetStream context a service
// runs on, retrying the first connect and reconnecting for ever, retries
// setting up what the service owns until the server is reachable, waits for
// the streams other services own, and reads streams (Streams).
package natsconn

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Config says where and as whom to connect.
type Config struct {
	URL       string // comma-separated seed list
	Name      string // client name shown by the server
	User      string
	Password  string
	CredsFile string
}

// InboxPrefix is the inbox prefix of a NATS user: "_INBOX_<user>".
func InboxPrefix(user string) string { return "_INBOX_" + user }

// Connect connects to NATS. The first connect is retried in the background
// (nats.RetryOnFailedConnect), so a service may start before its server;
// readiness reports the connection state.
func Connect(cfg Config, log *zap.Logger) (*nats.Conn, jetstream.JetStream, error) {
	if cfg.URL == "" {
		return nil, nil, errors.New("nats url is empty")
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		// Reconnect only to the configured seeds, never to a server the
		// cluster announced: a node that joined it (a rogue one included)
		// would otherwise be handed this service's password when its own
		// server goes down. List every node in URL instead.
		nats.IgnoreDiscoveredServers(),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats disconnected", zap.Error(err))
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", zap.String("url", c.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			log.Error("nats async error", zap.String("subscription", subj), zap.Error(err))
		}),
	}
	if cfg.User != "" {
		// Replies come to an inbox only this user may subscribe to
		// (deployments/nats/auth.conf), so no service can read another's
		// API responses, publish acks or consumer deliveries.
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password), nats.CustomInboxPrefix(InboxPrefix(cfg.User)))
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats %s: %w", cfg.URL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream context: %w", err)
	}
	return nc, js, nil
}

// Open connects like Connect and hands the connection to build, which wires
// the service on it; when build fails the connection is closed, so a service
// that cannot start leaves nothing open.
func Open[T any](cfg Config, log *zap.Logger, build func(*nats.Conn, jetstream.JetStream) (T, error)) (T, error) {
	var zero T
	nc, js, err := Connect(cfg, log)
	if err != nil {
		return zero, err
	}
	v, err := build(nc, js)
	if err != nil {
		nc.Close()
		return zero, err
	}
	return v, nil
}

// Ready reports whether the connection is usable.
func Ready(nc *nats.Conn) error {
	if nc == nil || !nc.IsConnected() {
		return errors.New("nats not connected")
	}
	return nil
}
