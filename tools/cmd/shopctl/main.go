// Command shopctl is the operator's command line for eventshop; see
// package shopctl for its commands:
//
//	shopctl dlq list|show SEQ|replay SEQ|replay --consumer C [--subject S]|replay --all|discard SEQ
//	        [--url http://127.0.0.1:8080] [--token $ADMIN_TOKEN] [--json]
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventshop/tools/shopctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := shopctl.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
