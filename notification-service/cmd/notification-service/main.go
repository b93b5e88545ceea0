// Command notification-service sends one notification per final order
// transition and announces it with shop.notification.sent.
// "notification-service healthcheck" probes a running instance.
package main

import (
	"github.com/eventshop/notification-service/internal/config"
	"github.com/eventshop/notification-service/internal/service"
	"github.com/eventshop/shared/platform/kit"
)

func main() { kit.Main(service.Name, config.Load, service.New) }
