package natsconn_test

import (
	"slices"
	"testing"

	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/natsconn"
	"github.com/eventshop/shared/platform/natstest"
)

// TestClientKeepsToItsSeeds: the servers of a cluster tell every client the
// client URLs of the other members (gossip). A client that follows them
// reconnects, when its own server goes down, to whatever server a member
// announced, a rogue one included, and logs in there with its password. A
// service connects only to the seeds it was configured with.
func TestClientKeepsToItsSeeds(t *testing.T) {
	t.Parallel()
	cluster := natstest.StartCluster(t, 3, 0)
	seeds := []string{cluster[0].ClientURL(), cluster[1].ClientURL()}

	nc, _, err := natsconn.Connect(natsconn.Config{URL: seeds[0] + "," + seeds[1], Name: "test-service"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// A round trip: every INFO the server sent before it, its gossip
	// included, has been processed.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if !nc.IsConnected() {
		t.Fatal("not connected to the cluster")
	}
	if d := nc.DiscoveredServers(); len(d) != 0 {
		t.Errorf("the client added servers the cluster announced to its pool: %v", d)
	}
	got := nc.Servers()
	slices.Sort(got)
	want := slices.Clone(seeds)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the client would reconnect to %v, want only its seeds %v", got, want)
	}
}
