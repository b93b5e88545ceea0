// Command order-service runs the order service: it accepts orders over HTTP
// and follows each one through the saga by consuming inventory and payment
// events. "order-service healthcheck" probes a running instance.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "order-service:", err)
		stop()
		os.Exit(1)
	}
}
