// Command loadgen drives the eventshop HTTP API with a mix of orders (a hot
// SKU, declined cards, unknown SKUs), in a closed loop (N in flight) or an
// open loop (a fixed rate), reports throughput and POST-to-final latency
// percentiles as text and JSON, and with -check exits non-zero when a
// business invariant is violated.
//
// With -stack it runs the system itself (built from this repository, an
// embedded nats-server and every service as its own process, on ports moved
// by -port-offset); -chaos implies -stack and disturbs the system while the
// load runs (package chaos), then also checks that the dead letters are
// exactly the poison it injected. -upgrade-from REV implies -stack too: the
// services start from the binaries of git revision REV, and while the load
// runs every instance is replaced by this tree's build, one at a time
// (package upgrade); then also every process must run the new build, no
// message may be dead-lettered, and the audit trail must hold an event
// type in two schema versions.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
	}
	os.Exit(code)
}
