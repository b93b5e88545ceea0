// Command loadgen drives the eventshop HTTP API with a mix of orders (a hot
// SKU, declined cards, unknown SKUs), in a closed loop (N in flight) or an
// open loop (a fixed rate), reports throughput and POST-to-final latency
// percentiles as text and JSON, and with -check exits non-zero when a
// business invariant is violated.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventshop/tools/loadgen"
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

func run(ctx context.Context, args []string) (int, error) {
	var c loadgen.Config
	var jsonOut string
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&c.OrderURL, "order-url", "http://127.0.0.1:8080", "order-service base URL")
	fs.StringVar(&c.InventoryURL, "inventory-url", "http://127.0.0.1:8081", "inventory-service base URL")
	fs.StringVar(&c.NotificationURL, "notification-url", "http://127.0.0.1:8083", "notification-service base URL (empty: skip its check)")
	fs.StringVar(&c.AuditURL, "audit-url", "http://127.0.0.1:8084", "audit-service base URL (empty: skip its check)")
	fs.StringVar(&c.GatewayURL, "gateway-url", "http://127.0.0.1:8090", "gateway simulator base URL (empty: skip the charge check)")
	fs.StringVar(&c.NATSURL, "nats-url", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS URL for final-event timestamps (empty: poll HTTP)")
	fs.StringVar(&c.NATSUser, "nats-user", os.Getenv("NATS_USER"), "NATS user (an operator account that may subscribe to orders.>)")
	fs.StringVar(&c.NATSPassword, "nats-password", os.Getenv("NATS_PASSWORD"), "NATS password")
	fs.StringVar(&c.AdminToken, "admin-token", os.Getenv("ADMIN_TOKEN"), "inventory admin token")
	fs.StringVar(&c.Mode, "mode", "closed", "closed (N in flight) or open (fixed rate)")
	fs.IntVar(&c.Concurrency, "concurrency", 16, "closed loop: orders in flight")
	fs.Float64Var(&c.Rate, "rate", 100, "open loop: orders per second")
	fs.DurationVar(&c.Duration, "duration", 10*1e9, "how long to offer load")
	fs.IntVar(&c.MaxOrders, "orders", 0, "stop after this many accepted orders (0: none)")
	fs.IntVar(&c.SKUs, "skus", 20, "catalogue size")
	fs.Float64Var(&c.HotShare, "hot", 0.2, "share of lines on the hot SKU")
	fs.Float64Var(&c.DeclineShare, "declined", 0.05, "share of orders with a declined card")
	fs.Float64Var(&c.UnknownShare, "unknown", 0.02, "share of orders naming an unknown SKU")
	fs.BoolVar(&c.Check, "check", true, "check the business invariants at the end")
	fs.StringVar(&jsonOut, "json", "", "also write the report as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	r, err := loadgen.New(c, os.Stderr)
	if err != nil {
		return 2, err
	}
	rep, err := r.Run(ctx)
	if err != nil {
		return 1, err
	}
	fmt.Print(rep.Text())
	if jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return 1, err
		}
		if err := os.WriteFile(jsonOut, b, 0o644); err != nil {
			return 1, err
		}
	}
	if len(rep.Violations) > 0 || rep.NotFinal > 0 {
		return 1, fmt.Errorf("%d invariant violations, %d orders not final", len(rep.Violations), rep.NotFinal)
	}
	return 0, nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
