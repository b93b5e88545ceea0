// Command devstack runs the whole eventshop system on one machine with only
// Go installed: an embedded nats-server running the production configuration
// (deployments/nats/nats.conf: JetStream, one least-privilege user per
// service) with its storage under .data/, then every service and the
// payment-gateway simulator as separate OS processes, each logged in as its
// own NATS user. It restarts a process that crashes and stops everything
// cleanly on Ctrl-C or SIGTERM. Restarting it keeps the data.
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
	if err := run(ctx, os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}
