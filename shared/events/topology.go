package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eventshop/shared/platform/deadletter"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamOptions tunes the streams a service creates.
type StreamOptions struct {
	// Replicas is the stream replication factor (1 on a single server, 3 on
	// a cluster).
	Replicas int
	// MaxAge bounds how long events are kept; 0 keeps them for ever.
	MaxAge time.Duration
}

// StreamConfig returns the configuration of one of the system's streams.
// Events are kept under limits retention (several consumers read each
// stream), on file storage, with a two-minute duplicate window and direct
// get enabled for single-event look-ups by subject.
func StreamConfig(name string, o StreamOptions) (jetstream.StreamConfig, error) {
	subj, ok := StreamSubjects[name]
	if !ok {
		return jetstream.StreamConfig{}, fmt.Errorf("stream %q: %w", name, ErrUnknownType)
	}
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	cfg := jetstream.StreamConfig{
		Name:        name,
		Description: "eventshop " + name + " events",
		Subjects:    []string{subj},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		MaxAge:      o.MaxAge,
		Duplicates:  2 * time.Minute,
		AllowDirect: true,
		Discard:     jetstream.DiscardOld,
	}
	if name == StreamAudit {
		// The audit log is append-only: nothing may delete or purge it.
		cfg.DenyDelete = true
		cfg.DenyPurge = true
		cfg.MaxAge = 0
		// Each append reads the chain head by sequence and links to it. A
		// direct get may be answered by a lagging replica of an R3 stream,
		// which would link a new entry to an older head; reads through
		// the stream leader are always current.
		cfg.AllowDirect = false
	}
	return cfg, nil
}

// ErrStreamUnsafe is returned for a stream that exists with a configuration
// that can lose what it holds (limits, deletes or purges allowed where the
// shipped configuration has none) and that the caller may not change.
var ErrStreamUnsafe = errors.New("stream can lose its messages")

// EnsureStream creates or updates a stream the calling service owns.
//
// AUDIT is created once and never updated by the audit service (its NATS
// user may not: a stolen credential must not shrink the audit log's
// retention). An AUDIT stream that exists with another configuration is
// used as it is if it keeps every entry (created by an older release, or
// by ops with other replicas), and refused with ErrStreamUnsafe if it can
// lose entries: only ops (SetupSharedStreams) or admin can fix it.
func EnsureStream(ctx context.Context, js jetstream.JetStream, name string, o StreamOptions) (jetstream.Stream, error) {
	cfg, err := StreamConfig(name, o)
	if err != nil {
		return nil, err
	}
	if name == StreamAudit {
		return ensureOnce(ctx, js, cfg)
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", name, err)
	}
	return s, nil
}

// EnsureOwnedStream is EnsureStream with the shape a service declared on
// platform/kit gives it (kit.Config.EnsureStream, which imports no
// contract): the stream the service owns, with replicas replicas.
func EnsureOwnedStream(ctx context.Context, js jetstream.JetStream, name string, replicas int) error {
	_, err := EnsureStream(ctx, js, name, StreamOptions{Replicas: replicas})
	return err
}

// ensureOnce creates the stream if it is missing; a create never changes a
// stream that exists (the same configuration is a no-op, another is refused
// by the server), so one that exists is checked instead of updated.
func ensureOnce(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.CreateStream(ctx, cfg)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
	}
	s, err = js.Stream(ctx, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	if problems := AppendOnlyProblems(s.CachedInfo().Config, cfg.Subjects...); len(problems) > 0 {
		return nil, fmt.Errorf("stream %s exists with %s: %w; this service may not change it, an operator must "+
			"(`audit-service setup-streams` as the NATS user ops, or as admin)", cfg.Name, strings.Join(problems, ", "), ErrStreamUnsafe)
	}
	return s, nil
}

// AppendOnlyProblems lists what in cfg could drop or remove stored
// messages of a stream that must keep every one (the audit log): any
// limit, a retention other than limits, memory storage, deletes or purges
// allowed, or subjects that no longer hold every one of subjects.
func AppendOnlyProblems(cfg jetstream.StreamConfig, subjects ...string) []string {
	problems := deadletter.LossRisks(cfg, subjects...)
	if !cfg.DenyDelete {
		problems = append(problems, "deletes allowed (deny_delete off)")
	}
	if !cfg.DenyPurge {
		problems = append(problems, "purges allowed (deny_purge off)")
	}
	return problems
}

// SetupSharedStreams creates, or brings to the shipped configuration, the
// streams no single service may change: the dead-letter stream every
// service writes to and the append-only audit log. It is the ops step
// (`audit-service setup-streams`, run as the NATS user ops at stack start,
// see deployments/nats/auth.conf); the services then only read their
// configuration, and create them, once, where no ops step runs.
func SetupSharedStreams(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	audit, err := StreamConfig(StreamAudit, o)
	if err != nil {
		return err
	}
	replicas := max(o.Replicas, 1)
	for _, cfg := range []jetstream.StreamConfig{deadletter.StreamConfig(deadletter.DefaultStream, replicas), audit} {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("set up stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}
