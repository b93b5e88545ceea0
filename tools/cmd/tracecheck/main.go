// Command tracecheck shows one order's trace from Jaeger: it stocks a SKU,
// places an order, waits until the order is final, then reads the trace the
// 202's traceparent names from Jaeger's query API until every process of
// the saga is in it, and prints it as a tree. With -trace it only prints
// that trace. It fails if the trace is not whole (a service missing, more
// than one root, a span whose parent is missing) by -timeout.
//
//	tracecheck [-order http://127.0.0.1:8080] [-inventory http://127.0.0.1:8081]
//	           [-jaeger http://127.0.0.1:16686] [-token $ADMIN_TOKEN] [-timeout 30s] [-trace ID]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/eventshop/tools/tracecheck"
)

// services are the processes one order's trace crosses.
var services = []string{"order-service", "inventory-service", "payment-service", "payment-gateway", "notification-service", "audit-service"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "tracecheck:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("tracecheck", flag.ContinueOnError)
	orderURL := fs.String("order", "http://127.0.0.1:8080", "order service")
	inventoryURL := fs.String("inventory", "http://127.0.0.1:8081", "inventory service")
	jaeger := fs.String("jaeger", "http://127.0.0.1:16686", "Jaeger's query API")
	token := fs.String("token", os.Getenv("ADMIN_TOKEN"), "admin token, to stock the SKU (default $ADMIN_TOKEN)")
	timeout := fs.Duration("timeout", 30*time.Second, "longest wait for the order and its whole trace")
	traceID := fs.String("trace", "", "only print this trace")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	if *traceID != "" {
		t, err := tracecheck.Fetch(ctx, client, *jaeger, *traceID)
		if err != nil {
			return err
		}
		fmt.Print(tracecheck.Summary(t))
		return nil
	}
	if *token == "" {
		return errors.New("an admin token is needed to stock the SKU: -token or $ADMIN_TOKEN")
	}
	shop := tracecheck.Shop{Client: client, OrderURL: *orderURL, InventoryURL: *inventoryURL, AdminToken: *token}
	p, err := shop.PlaceOrder(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("order %s is %s; waiting for trace %s in Jaeger\n", p.OrderID, p.Status, p.TraceID)
	for {
		t, err := tracecheck.Fetch(ctx, client, *jaeger, p.TraceID)
		var sh tracecheck.Shape
		if err == nil {
			if sh = tracecheck.ShapeOf(t, services); sh.Whole() {
				fmt.Print(tracecheck.Summary(t))
				return nil
			}
		} else if !errors.Is(err, tracecheck.ErrNotFound) {
			return err
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("trace %s: %w", p.TraceID, err)
			}
			return fmt.Errorf("trace %s is not whole: %s\n%s", p.TraceID, sh, tracecheck.Summary(t))
		case <-time.After(250 * time.Millisecond):
		}
	}
}
