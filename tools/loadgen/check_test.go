package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestAuditedEventsCountsEntriesOfBlocks: the audit check counts events
// in the entries of the AUDIT stream's blocks, a repeated event as often
// as it is stored, and nothing for a message that is not a block.
func TestAuditedEventsCountsEntriesOfBlocks(t *testing.T) {
	t.Parallel()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "AUDIT", Subjects: []string{"audit.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"first":1,"count":2,"entries":[{"index":1,"event_id":"e-1"},{"index":2,"event_id":"e-2"}]}`,
		`not a block`,
		`{"first":3,"count":2,"entries":[{"index":3,"event_id":"e-3"},{"index":4,"event_id":"e-1"}]}`,
	} {
		if _, err := js.Publish(ctx, "audit.blocks", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	got, entries, err := AuditedEvents(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if entries != 4 || len(got) != 3 || got["e-1"] != 2 || got["e-2"] != 1 || got["e-3"] != 1 {
		t.Fatalf("AuditedEvents = %v, %d entries; want e-1 twice, e-2 and e-3 once, 4 entries", got, entries)
	}
}
