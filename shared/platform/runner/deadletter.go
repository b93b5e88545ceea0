package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/tracing"
)

// DeadLetterStream is the default name of the stream holding poison
// messages, under subjects dlq.<consumer>.<stream>.<stream sequence>.
const DeadLetterStream = "DLQ"

// Headers set on a dead-lettered message, beside the original ones.
const (
	HeaderDLQSubject    = "Dlq-Original-Subject"
	HeaderDLQStream     = "Dlq-Original-Stream"
	HeaderDLQSequence   = "Dlq-Original-Sequence"
	HeaderDLQConsumer   = "Dlq-Consumer"
	HeaderDLQDeliveries = "Dlq-Deliveries"
	HeaderDLQError      = "Dlq-Error"
	HeaderDLQTime       = "Dlq-Time"
	// HeaderDLQMissing is "true" on a dead letter written after the
	// original message had already left its stream: it records the loss,
	// and there is no payload to replay.
	HeaderDLQMissing = "Dlq-Original-Missing"
)

// maxReasonLen bounds the error text kept in a dead letter's header.
const maxReasonLen = 2048

// ErrDeadLetterStreamOutdated is returned by EnsureDeadLetterStream for a
// dead-letter stream that keeps every letter but lacks what resolving one
// needs (rollup, per-message TTL), when this NATS user may not turn it on:
// letters are still written; an operator upgrades the stream.
var ErrDeadLetterStreamOutdated = errors.New("dead-letter stream lacks rollup and message TTL")

// ErrDeadLetterStreamUnsafe is returned for a dead-letter stream whose
// configuration can drop letters (a limit, another retention, memory
// storage): nobody but ops or admin may change it, and a service that
// wrote its letters there would lose them.
var ErrDeadLetterStreamUnsafe = errors.New("dead-letter stream can drop letters")

// deadLetterUpdateTimeout bounds the upgrade of an outdated dead-letter
// stream.
const deadLetterUpdateTimeout = 5 * time.Second

// EnsureDeadLetterStream creates the dead-letter stream if it is missing,
// and checks the one it finds. The stream is shared by every service, so
// no service's NATS user may update it (deployments/nats/auth.conf): a
// create never changes an existing stream, and the stream is normally made
// by the ops step at stack start. One that exists is used as it is if it
// keeps every letter; rollup and message TTL, missing on a stream made
// before they were used, are turned on where the user may update it
// (development without auth), or reported as ErrDeadLetterStreamOutdated
// where it may not. A stream whose limits can drop letters is refused with
// ErrDeadLetterStreamUnsafe.
func EnsureDeadLetterStream(ctx context.Context, js jetstream.JetStream, name string, replicas int) error {
	want := DeadLetterStreamConfig(name, replicas)
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
			"(`audit-service setup-streams` as the NATS user ops, or as admin)", name, strings.Join(risks, ", "), ErrDeadLetterStreamUnsafe)
	}
	if cfg.AllowRollup && cfg.AllowMsgTTL {
		return nil
	}
	cfg.AllowRollup, cfg.AllowMsgTTL = true, true
	// A user without the permission gets no answer, only an asynchronous
	// permissions violation: do not wait for one for long.
	uctx, cancel := context.WithTimeout(ctx, deadLetterUpdateTimeout)
	defer cancel()
	if _, err := js.UpdateStream(uctx, cfg); err != nil {
		return fmt.Errorf("%w: turning them on on %s failed (%w); dead letters are kept but cannot be replayed "+
			"or discarded until an operator runs `audit-service setup-streams` as the NATS user ops", ErrDeadLetterStreamOutdated, name, err)
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

// DeadLetterStreamConfig is the configuration of the dead-letter stream.
// Limits retention keeps every letter until an operator resolves it. A
// resolved letter is replaced, in one write, by a small tombstone on the
// same subject (a rollup, hence AllowRollup) that expires after a while
// (per-message TTL, hence AllowMsgTTL): while it is there, no second
// dead letter can be written for that message.
func DeadLetterStreamConfig(name string, replicas int) jetstream.StreamConfig {
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

// DeadLetterSubject is the subject of the dead letter consumer wrote for
// the message at seq of stream: one subject per consumer and message, so
// each message is dead-lettered at most once by each consumer.
func DeadLetterSubject(consumer, stream string, seq uint64) string {
	return fmt.Sprintf("dlq.%s.%s.%d", consumer, stream, seq)
}

// Letter is a message given up on, and why.
type Letter struct {
	Consumer   string      // durable that gave up
	Stream     string      // stream of the original message
	Sequence   uint64      // its stream sequence
	Subject    string      // its subject ("" if it was already gone)
	Data       []byte      // its payload
	Header     nats.Header // its headers (trace and correlation ids)
	Deliveries uint64      // deliveries it had
	Reason     string      // the last error
	Time       time.Time   // when it was given up on
	// Missing says the original had left its stream before it could be
	// copied: the letter records the loss instead of the payload.
	Missing bool
}

// WriteDeadLetter copies l into the dead-letter stream, once: the publish
// expects the letter's subject to be empty, so a second attempt for the
// same message and consumer, from the runner or from the server's
// advisory, stores nothing and reports created false. A subject that
// holds the tombstone of a resolved letter refuses it too, so a replayed
// or discarded message is never dead-lettered again from an old report.
//
// Inside a recorded span (the CONSUMER span of the delivery given up on,
// or of the advisory that reported it) the write is a PRODUCER span
// "dead-letter <subject template>", child of it and linked to the
// original message's producer when that is another trace's: the order's
// trace shows where it stopped, and why.
func WriteDeadLetter(ctx context.Context, js jetstream.JetStream, l Letter) (created bool, err error) {
	ctx, span := startDeadLetter(ctx, l)
	defer func() { endDeadLetter(span, created, err) }()
	dl := nats.NewMsg(DeadLetterSubject(l.Consumer, l.Stream, l.Sequence))
	dl.Data = l.Data
	for k, vs := range l.Header {
		// Nats-* headers steer JetStream (expected sequences, message id,
		// TTL, rollup) or describe where a direct get found the message;
		// copied, they would act on the dead-letter stream instead. Dlq-*
		// headers are the letter's own: a message cannot bring them (a
		// forged resolution would hide the letter).
		if isControlHeader(k) || isLetterHeader(k) {
			continue
		}
		for _, v := range vs {
			dl.Header.Add(k, v)
		}
	}
	dl.Header.Set(HeaderDLQSubject, l.Subject)
	dl.Header.Set(HeaderDLQStream, l.Stream)
	dl.Header.Set(HeaderDLQSequence, strconv.FormatUint(l.Sequence, 10))
	dl.Header.Set(HeaderDLQConsumer, l.Consumer)
	dl.Header.Set(HeaderDLQDeliveries, strconv.FormatUint(l.Deliveries, 10))
	dl.Header.Set(HeaderDLQError, truncate(l.Reason, maxReasonLen))
	dl.Header.Set(HeaderDLQTime, l.Time.UTC().Format(time.RFC3339Nano))
	if l.Missing {
		dl.Header.Set(HeaderDLQMissing, "true")
	}
	if _, err := js.PublishMsg(ctx, dl, jetstream.WithExpectLastSequencePerSubject(0)); err != nil {
		if natsconn.IsWrongLastSequence(err) {
			return false, nil // already dead-lettered (or resolved) for this consumer
		}
		return false, fmt.Errorf("dead-letter %s: %w", l.Subject, err)
	}
	return true, nil
}

// Attributes of a dead-letter span, beside the messaging ones.
const (
	attrDLQConsumer   = attribute.Key("eventshop.dead_letter.consumer")
	attrDLQSubject    = attribute.Key("eventshop.dead_letter.original_subject")
	attrDLQSequence   = attribute.Key("eventshop.dead_letter.original_sequence")
	attrDLQDeliveries = attribute.Key("eventshop.dead_letter.deliveries")
	attrDLQReason     = attribute.Key("eventshop.dead_letter.reason")
	attrDLQMissing    = attribute.Key("eventshop.dead_letter.original_missing")
	attrDLQCreated    = attribute.Key("eventshop.dead_letter.created")
)

// noSpan does nothing: the span of a letter written outside a recorded
// span.
var noSpan = oteltrace.SpanFromContext(context.Background())

// startDeadLetter starts the span of writing l, if the span in ctx is
// recorded (tracing.StartChild): nothing otherwise.
func startDeadLetter(ctx context.Context, l Letter) (context.Context, oteltrace.Span) {
	if !oteltrace.SpanFromContext(ctx).IsRecording() {
		return ctx, noSpan
	}
	opts := []oteltrace.SpanStartOption{oteltrace.WithSpanKind(oteltrace.SpanKindProducer)}
	parent := oteltrace.SpanContextFromContext(ctx)
	orig := oteltrace.SpanContextFromContext(tracing.Propagator.Extract(context.Background(), tracing.HeaderCarrier(l.Header)))
	if orig.IsValid() && orig.TraceID() != parent.TraceID() {
		opts = append(opts, oteltrace.WithLinks(oteltrace.Link{SpanContext: orig}))
	}
	tmpl := subjectTemplate(l.Subject)
	if l.Subject == "" {
		tmpl = l.Stream
	}
	ctx, span := tracing.StartChild(ctx, tracerName, "dead-letter "+tmpl, opts...)
	span.SetAttributes(
		tracing.AttrMessagingSystem.String(tracing.MessagingSystemNATS),
		tracing.AttrOperationType.String(tracing.OperationSend),
		tracing.AttrDestinationName.String(DeadLetterSubject(l.Consumer, l.Stream, l.Sequence)),
		tracing.AttrDestinationTemplate.String("dlq."+l.Consumer+"."+l.Stream+".*"),
		attrDLQConsumer.String(l.Consumer),
		attrDLQSubject.String(l.Subject),
		attrDLQSequence.Int64(int64(l.Sequence)),
		attrDLQDeliveries.Int64(int64(l.Deliveries)),
		attrDLQReason.String(truncate(l.Reason, maxReasonLen)),
		attrDLQMissing.Bool(l.Missing),
	)
	return ctx, span
}

// endDeadLetter ends span with whether the letter was written (false: it
// was there already), or the failure.
func endDeadLetter(span oteltrace.Span, created bool, err error) {
	if span.IsRecording() {
		if err != nil {
			tracing.Fail(span, err)
		} else {
			span.SetAttributes(attrDLQCreated.Bool(created))
		}
	}
	span.End()
}

// isControlHeader reports a JetStream control or metadata header (Nats-*).
func isControlHeader(k string) bool {
	return len(k) >= 5 && strings.EqualFold(k[:5], "nats-")
}

// isLetterHeader reports a header the dead letter itself sets (Dlq-*).
func isLetterHeader(k string) bool {
	return len(k) >= 4 && strings.EqualFold(k[:4], "dlq-")
}

// deadLetter copies the message the runner gives up on into the
// dead-letter stream (see WriteDeadLetter).
func (r *Runner) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, reason error) (bool, error) {
	return WriteDeadLetter(ctx, r.js, Letter{
		Consumer:   r.cfg.Durable,
		Stream:     meta.Stream,
		Sequence:   meta.Sequence.Stream,
		Subject:    msg.Subject(),
		Data:       msg.Data(),
		Header:     msg.Headers(),
		Deliveries: meta.NumDelivered,
		Reason:     reason.Error(),
		Time:       r.now(),
	})
}
