package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/eventshop/tools/upgrade"
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

func TestParseFlagsUpgrade(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		args          []string
		wantErr       string // in the error; "" for none
		wantInstances int
		wantOrder     []string
		wantSelfHost  bool
	}{
		{name: "upgrade: two instances by default, the default order, the stack", args: []string{"-upgrade-from", "bf6c2a2"},
			wantInstances: 2, wantOrder: upgrade.DefaultOrder, wantSelfHost: true},
		{name: "upgrade with three instances", args: []string{"-upgrade-from", "bf6c2a2", "-instances", "3"},
			wantInstances: 3, wantOrder: upgrade.DefaultOrder, wantSelfHost: true},
		{name: "upgrade of one service", args: []string{"-upgrade-from", "bf6c2a2", "-upgrade-order", "order-service"},
			wantInstances: 2, wantOrder: []string{"order-service"}, wantSelfHost: true},
		{name: "one instance cannot roll", args: []string{"-upgrade-from", "bf6c2a2", "-instances", "1"}, wantErr: "-upgrade-from needs -instances 2 or more"},
		{name: "no chaos in an upgrade", args: []string{"-upgrade-from", "bf6c2a2", "-chaos"}, wantErr: "do not combine"},
		{name: "an unknown service", args: []string{"-upgrade-from", "bf6c2a2", "-upgrade-order", "order-service,billing-service"}, wantErr: `-upgrade-order: invalid upgrade: order names "billing-service"`},
		{name: "an order without an upgrade", args: []string{"-upgrade-order", "order-service"}, wantErr: "-upgrade-order needs -upgrade-from"},
		{name: "plain load: no stack", args: nil, wantInstances: 1},
		{name: "chaos: the stack, one instance unless told", args: []string{"-chaos"}, wantInstances: 1, wantSelfHost: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, o, err := parseFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFlags(%q) = %v, want an error saying %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.instances != tt.wantInstances || !slices.Equal(o.upgradeOrder, tt.wantOrder) || o.selfHost != tt.wantSelfHost {
				t.Fatalf("parseFlags(%q): instances %d, order %v, stack %v; want %d, %v, %v",
					tt.args, o.instances, o.upgradeOrder, o.selfHost, tt.wantInstances, tt.wantOrder, tt.wantSelfHost)
			}
		})
	}
}
