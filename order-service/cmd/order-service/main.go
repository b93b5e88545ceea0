// Command order-service runs the order service: it accepts orders over HTTP
// and follows each one through the saga by consuming inventory and payment
// events. "order-service healthcheck" probes a running instance.
package main

import (
	"github.com/eventshop/order-service/internal/config"
	"github.com/eventshop/order-service/internal/service"
	"github.com/eventshop/shared/platform/kit"
)

func main() { kit.Main(service.Name, config.Load, service.New) }
