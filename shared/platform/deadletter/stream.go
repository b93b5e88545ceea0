package deadletter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultStream is the default name of the stream holding poison
// messages, under subjects dlq.<consumer>.<stream>.<stream sequence>.
const DefaultStream = "DLQ"

// ErrStreamOutdated is returned by EnsureStream for a
// dead-letter stream that keeps every letter but lacks what resolving one
// needs (rollup, per-message TTL), when this NATS user may not turn it on:
// letters are still written; an operator upgrades the stream.
var ErrStreamOutdated = errors.New("dead-letter stream lacks rollup and message TTL")

// ErrStreamUnsafe is returned for a dead-letter stream whose
// configuration can drop letters (a limit, another retention, memory
// storage): nobody but ops or admin may change it, and a service that
// wrote its letters there would lose them.
var ErrStreamUnsafe = errors.New("dead-letter stream can drop letters")

// updateTimeout bounds the upgrade of an outdated dead-letter
// stream.
const updateTimeout = 5 * time.Second

// EnsureStream creates the dead-letter stream if it is missing,
// and checks the one it finds. The stream is shared by every service, so
// no service's NATS user may update it (deployments/nats/auth.conf): a
// create never changes an existing stream, and the stream is normally made
// by the ops step at stack start. One that exists is used as it is if it
// keeps every letter; rollup and message TTL, missing on a stream made
// before they were used, are turned on where the user may update it
// (development without auth), or reported as ErrStreamOutdated
// where it may not. A stream whose limits can drop letters is refused with
// ErrStreamUnsafe.
func EnsureStream(ctx context.Context, js jetstream.JetStream, name string, replicas int) error {
	want := StreamConfig(name, replicas)
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err := js.CreateStream(ctx, want); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("dead-letter stream %s does not exist and creating it failed (the ops step "+
				"`audit-service setup-streams` creates it at stack start): %w", name, err)
		}
		s, err = js.Stream(ctx, name) // created, or by another service in the meantime
	}
	if err != nil {
		return fmt.Errorf("dead-letter stream %s: %w", name, err)
	}
	cfg := s.CachedInfo().Config
	if risks := LossRisks(cfg, want.Subjects...); len(risks) > 0 {
		return fmt.Errorf("dead-letter stream %s has %s: %w; no service may change it, an operator must "+
			"(`audit-service setup-streams` as the NATS user ops, or as admin)", name, strings.Join(risks, ", "), ErrStreamUnsafe)
	}
	if cfg.AllowRollup && cfg.AllowMsgTTL {
		return nil
	}
	cfg.AllowRollup, cfg.AllowMsgTTL = true, true
	// A user without the permission gets no answer, only an asynchronous
	// permissions violation: do not wait for one for long.
	uctx, cancel := context.WithTimeout(ctx, updateTimeout)
	defer cancel()
	if _, err := js.UpdateStream(uctx, cfg); err != nil {
		return fmt.Errorf("%w: turning them on on %s failed (%w); dead letters are kept but cannot be replayed "+
			"or discarded until an operator runs `audit-service setup-streams` as the NATS user ops", ErrStreamOutdated, name, err)
	}
	return nil
}

// LossRisks lists what in cfg could drop the messages of a stream that
// must keep every one until someone resolves it, or refuse new ones: a
// limit on count, size, age, per-subject count or message size, a
// retention other than limits (work queue and interest streams delete
// what was consumed), memory storage (lost on a restart), or subjects that
// do not hold every one of subjects.
func LossRisks(cfg jetstream.StreamConfig, subjects ...string) []string {
	var risks []string
	if cfg.Retention != jetstream.LimitsPolicy {
		risks = append(risks, "retention "+cfg.Retention.String())
	}
	if cfg.Storage != jetstream.FileStorage {
		risks = append(risks, "storage "+cfg.Storage.String())
	}
	for _, l := range []struct {
		name string
		v    int64
	}{
		{"max_msgs", cfg.MaxMsgs},
		{"max_bytes", cfg.MaxBytes},
		{"max_msgs_per_subject", cfg.MaxMsgsPerSubject},
		{"max_msg_size", int64(cfg.MaxMsgSize)},
	} {
		if l.v > 0 {
			risks = append(risks, fmt.Sprintf("%s %d", l.name, l.v))
		}
	}
	if cfg.MaxAge > 0 {
		risks = append(risks, "max_age "+cfg.MaxAge.String())
	}
	for _, want := range subjects {
		if !slices.Contains(cfg.Subjects, want) {
			risks = append(risks, fmt.Sprintf("subjects %v (want %s)", cfg.Subjects, want))
		}
	}
	return risks
}

// StreamConfig is the configuration of the dead-letter stream.
// Limits retention keeps every letter until an operator resolves it. A
// resolved letter is replaced, in one write, by a small tombstone on the
// same subject (a rollup, hence AllowRollup) that expires after a while
// (per-message TTL, hence AllowMsgTTL): while it is there, no second
// dead letter can be written for that message.
func StreamConfig(name string, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: "eventshop dead letters: poison or exhausted messages with the reason",
		Subjects:    []string{"dlq.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    replicas,
		AllowDirect: true,
		Duplicates:  2 * time.Minute,
		AllowRollup: true,
		AllowMsgTTL: true,
	}
}
