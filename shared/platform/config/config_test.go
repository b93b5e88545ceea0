package config_test

import (
	"testing"
	"time"

	"github.com/eventshop/shared/platform/config"
)

func TestReader(t *testing.T) {
	t.Parallel()
	env := map[string]string{"S": "x", "I": "7", "D": "3s", "F": "0.5", "B": "true", "BAD_B": "sure", "BAD_I": "seven", "BAD_D": "soon", "EMPTY": ""}
	r := config.New(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if got := r.String("S", "d"); got != "x" {
		t.Errorf("String = %q", got)
	}
	if got := r.String("EMPTY", "d"); got != "d" {
		t.Errorf("String(empty) = %q, want default", got)
	}
	if got := r.Int("I", 1); got != 7 {
		t.Errorf("Int = %d", got)
	}
	if got := r.Duration("D", time.Second); got != 3*time.Second {
		t.Errorf("Duration = %v", got)
	}
	if got := r.Float("F", 1); got != 0.5 {
		t.Errorf("Float = %v", got)
	}
	if got := r.Bool("B", false); !got {
		t.Errorf("Bool = %v", got)
	}
	if got := r.Bool("UNSET", true); !got {
		t.Errorf("Bool(unset) = %v, want default", got)
	}
	if r.Err() != nil {
		t.Fatalf("Err = %v before bad values", r.Err())
	}
	if got := r.Int("BAD_I", 1); got != 1 {
		t.Errorf("Int(bad) = %d, want default", got)
	}
	r.Duration("BAD_D", 0)
	if got := r.Bool("BAD_B", true); !got {
		t.Errorf("Bool(bad) = %v, want default", got)
	}
	if err := r.Err(); err == nil {
		t.Fatal("Err = nil after two bad values")
	}
	if config.Mask("secret") != "****" || config.Mask("") != "" {
		t.Error("Mask")
	}
}
