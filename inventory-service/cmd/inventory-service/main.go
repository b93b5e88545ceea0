// Command inventory-service owns the catalogue and its stock: it reserves,
// releases and commits the units of the orders of the saga.
// "inventory-service healthcheck" probes a running instance.
package main

import (
	"github.com/eventshop/inventory-service/internal/config"
	"github.com/eventshop/inventory-service/internal/service"
	"github.com/eventshop/shared/platform/kit"
)

func main() { kit.Main(service.Name, config.Load, service.New) }
