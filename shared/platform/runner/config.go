package runner

import (
	"fmt"
	"time"

	"github.com/eventshop/shared/platform/deadletter"
)

// Config describes one durable pull consumer and how its messages are
// handled.
type Config struct {
	// Stream the consumer reads.
	Stream string
	// Durable is the consumer name; it also names the consumer in metrics,
	// logs and dead-letter subjects.
	Durable string
	// FilterSubjects restricts the consumer to these subjects.
	FilterSubjects []string
	// Concurrency bounds how many messages are handled at once (default 8).
	Concurrency int
	// MaxAckPending bounds unacknowledged messages, the backpressure the
	// server applies (default 16 x Concurrency).
	MaxAckPending int
	// AckWait is how long the server waits for an ack before redelivering;
	// it is also each handler call's deadline (default 30s).
	AckWait time.Duration
	// MaxDeliver is the number of deliveries after which a failing message
	// is dead-lettered (default 10). -1 means unlimited: use it only where
	// every failure is a wait, never a fault.
	MaxDeliver int
	// Retry is the redelivery schedule for transient failures.
	Retry Backoff
	// DeadLetterStream receives poison messages (default "DLQ").
	DeadLetterStream string
	// DeadLetterReplicas is the replication factor of the dead-letter
	// stream if this runner creates it (default 1).
	DeadLetterReplicas int
}

// Backoff is an exponential retry schedule with full jitter.
type Backoff struct {
	Initial    time.Duration // first delay (default 200ms)
	Max        time.Duration // cap (default 30s)
	Multiplier float64       // growth per attempt (default 2)
}

func (c *Config) setDefaults() {
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 16 * c.Concurrency
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = 10
	}
	if c.Retry.Initial == 0 {
		c.Retry.Initial = 200 * time.Millisecond
	}
	if c.Retry.Max == 0 {
		c.Retry.Max = 30 * time.Second
	}
	if c.Retry.Multiplier == 0 {
		c.Retry.Multiplier = 2
	}
	if c.DeadLetterStream == "" {
		c.DeadLetterStream = deadletter.DefaultStream
	}
	if c.DeadLetterReplicas == 0 {
		c.DeadLetterReplicas = 1
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Stream == "":
		return fmt.Errorf("stream is empty: %w", ErrInvalidConfig)
	case c.Durable == "":
		return fmt.Errorf("durable is empty: %w", ErrInvalidConfig)
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency %d < 1: %w", c.Concurrency, ErrInvalidConfig)
	case c.MaxAckPending < c.Concurrency:
		return fmt.Errorf("max ack pending %d < concurrency %d: %w", c.MaxAckPending, c.Concurrency, ErrInvalidConfig)
	case c.MaxDeliver < -1 || c.MaxDeliver == 1:
		return fmt.Errorf("max deliver %d (want -1 or >= 2): %w", c.MaxDeliver, ErrInvalidConfig)
	case c.Retry.Initial < 0 || c.Retry.Max < c.Retry.Initial || c.Retry.Multiplier < 1:
		return fmt.Errorf("retry schedule %+v: %w", c.Retry, ErrInvalidConfig)
	}
	return nil
}
