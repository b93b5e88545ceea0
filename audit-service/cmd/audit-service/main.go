// Command audit-service records every event of every domain stream in an
// append-only, tamper-evident SHA-256 hash chain and serves it over HTTP.
// "audit-service healthcheck" probes a running instance. "audit-service
// setup-streams" is the ops step run once at stack start, as the NATS user
// ops (NATS_USER/NATS_PASSWORD): it creates, or brings back to the shipped
// configuration, the streams no service may change (DLQ, AUDIT).
package main

import (
	"github.com/eventshop/audit-service/internal/config"
	"github.com/eventshop/audit-service/internal/service"
	"github.com/eventshop/shared/platform/kit"
)

func main() {
	kit.Main(service.Name, config.Load, service.New, kit.Command[config.Config]{Name: "setup-streams", Run: service.SetupStreams})
}
