package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/eventshop/shared/platform/kvstore"
)

func TestRetry(t *testing.T) {
	t.Parallel()
	errOther := errors.New("unavailable")
	errOwn := errors.New("moved on")
	fast := kvstore.Policy{Attempts: 4, Initial: time.Microsecond, Max: time.Microsecond}
	tests := []struct {
		name         string
		conflict     error // Policy.Conflict
		results      []error
		wantErr      error // nil: success
		wantAttempts int
	}{
		{name: "success at once", results: []error{nil}, wantAttempts: 1},
		{name: "success after conflicts", results: []error{kvstore.ErrConflict, kvstore.ErrConflict, nil}, wantAttempts: 3},
		{name: "another error is not retried", results: []error{errOther}, wantErr: errOther, wantAttempts: 1},
		{name: "gives up after the attempts", results: []error{kvstore.ErrConflict, kvstore.ErrConflict, kvstore.ErrConflict, kvstore.ErrConflict, nil},
			wantErr: kvstore.ErrConflict, wantAttempts: 4},
		{name: "a domain's own conflict", conflict: errOwn, results: []error{fmt.Errorf("x: %w", errOwn), nil}, wantAttempts: 2},
		{name: "then ErrConflict is another error", conflict: errOwn, results: []error{kvstore.ErrConflict}, wantErr: kvstore.ErrConflict, wantAttempts: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := fast
			p.Conflict = tt.conflict
			retried := 0
			p.OnRetry = func(error) { retried++ }
			attempts := 0
			err := kvstore.Retry(context.Background(), p, func(context.Context) error {
				attempts++
				return tt.results[attempts-1]
			})
			if tt.wantErr == nil && err != nil || !errors.Is(err, tt.wantErr) {
				t.Fatalf("Retry = %v, want %v", err, tt.wantErr)
			}
			if attempts != tt.wantAttempts || retried != attempts-1 {
				t.Fatalf("%d attempts, %d retried; want %d and %d", attempts, retried, tt.wantAttempts, tt.wantAttempts-1)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		p       kvstore.Policy
		wantErr bool
	}{
		{name: "zero: the defaults", p: kvstore.Policy{}},
		{name: "the default", p: kvstore.DefaultPolicy},
		{name: "an initial delay above the default max", p: kvstore.Policy{Initial: time.Second}},
		{name: "negative attempts", p: kvstore.Policy{Attempts: -1}, wantErr: true},
		{name: "negative delay", p: kvstore.Policy{Initial: -time.Millisecond}, wantErr: true},
		{name: "max below initial", p: kvstore.Policy{Initial: time.Second, Max: time.Millisecond}, wantErr: true},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if (err != nil) != tt.wantErr || err != nil && !errors.Is(err, kvstore.ErrInvalidOption) {
			t.Errorf("%s: Validate = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}
