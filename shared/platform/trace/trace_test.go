package trace_test

import (
	"errors"
	"testing"

	"github.com/eventshop/shared/platform/trace"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		{name: "valid", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", want: "4bf92f3577b34da6a3ce929d0e0e4736"},
		{name: "upper case", in: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", wantErr: trace.ErrInvalid},
		{name: "zero trace", in: "00-00000000000000000000000000000000-00f067aa0ba902b7-01", wantErr: trace.ErrInvalid},
		{name: "bad version", in: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", wantErr: trace.ErrInvalid},
		{name: "garbage", in: "nope", wantErr: trace.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := trace.Parse(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got.TraceID != tt.want {
				t.Fatalf("trace id = %q, want %q", got.TraceID, tt.want)
			}
		})
	}
}

func TestChildKeepsTraceAndChangesSpan(t *testing.T) {
	t.Parallel()
	parent := trace.New()
	if _, err := trace.Parse(parent.String()); err != nil {
		t.Fatalf("New() is not valid: %v", err)
	}
	child := trace.Child(parent.String())
	if child.TraceID != parent.TraceID || child.SpanID == parent.SpanID {
		t.Fatalf("child %v of %v", child, parent)
	}
	if fresh := trace.Child("garbage"); fresh.TraceID == "" || fresh.TraceID == parent.TraceID {
		t.Fatalf("child of garbage = %v, want a new trace", fresh)
	}
	if trace.TraceID(parent.String()) != parent.TraceID || trace.TraceID("x") != "" {
		t.Fatal("TraceID mismatch")
	}
}
