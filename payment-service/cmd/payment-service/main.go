// Command payment-service charges reserved orders through the card gateway
// and publishes payments.<id>.succeeded or payments.<id>.failed.
package main

import (
	"github.com/eventshop/payment-service/internal/config"
	"github.com/eventshop/payment-service/internal/service"
	"github.com/eventshop/shared/platform/kit"
)

func main() { kit.MainFunc(service.Name, config.Load, kit.Serve(service.New)) }
