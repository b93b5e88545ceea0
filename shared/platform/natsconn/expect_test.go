package natsconn_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/natstest"
)

// TestIsWrongLastSequence holds the check to what the server answers a
// publish whose expectation does not hold, and to both codes it may use.
func TestIsWrongLastSequence(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.Connect(t, srv)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ONCE", Subjects: []string{"once.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "once.a", []byte("1"), jetstream.WithExpectLastSequencePerSubject(0)); err != nil {
		t.Fatal(err)
	}
	_, refused := js.Publish(ctx, "once.a", []byte("2"), jetstream.WithExpectLastSequencePerSubject(0))

	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"the server's refusal", refused, true},
		{"wrapped", fmt.Errorf("publish: %w", refused), true},
		{"a replicated stream's code", &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequenceConstant}, true},
		{"another API error", &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamNotFound}, false},
		{"not an API error", errors.New("timeout"), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := natsconn.IsWrongLastSequence(tt.err); got != tt.want {
				t.Errorf("IsWrongLastSequence(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
