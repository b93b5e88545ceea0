// Command natsexporter serves NATS servers' monitoring data (/varz, /jsz,
// /healthz) as Prometheus metrics on /metrics, for the metrics store
// (deployments/observability); see package natsexporter.
//
//	natsexporter [-listen 127.0.0.1:7777] [-nats http://127.0.0.1:8222,...] [-timeout 4s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/eventshop/tools/natsexporter"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "natsexporter:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("natsexporter", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:7777", "address to serve /metrics on")
	urls := fs.String("nats", "http://127.0.0.1:8222", "comma-separated monitoring URLs of the NATS servers")
	timeout := fs.Duration("timeout", 4*time.Second, "longest a scrape waits for the servers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	exp, err := natsexporter.New(strings.Split(*urls, ","), *timeout)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", exp)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shut); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
