package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPermissionViolations(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "nats.log")
	log := `[1] 2026/11/30 04:00:00.000000 [INF] Server is ready
[1] 2026/11/30 04:00:01.000000 [ERR] 127.0.0.1:5000 - cid:7 - "v1.55.0:go:order-service" - Publish Violation - User "order-service", Subject "inventory.x.reserved"
[1] 2026/11/30 04:00:02.000000 [INF] JetStream started
`
	if err := os.WriteFile(file, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := permissionViolations(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.Contains(got[0], `Subject "inventory.x.reserved"`) {
		t.Fatalf("permissionViolations = %q, want the one publish violation", got)
	}
	if _, err := permissionViolations(filepath.Join(t.TempDir(), "missing.log")); err == nil {
		t.Fatal("a missing log is not an error")
	}
}
