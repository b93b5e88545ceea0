// Command payment-gateway runs the card processor simulator (in-memory
// state) that the payment service charges in local runs and tests.
package main

import (
	"github.com/eventshop/payment-service/internal/gatewaysim"
	"github.com/eventshop/shared/platform/kit"
)

func main() { kit.MainFunc(gatewaysim.ServiceName, gatewaysim.LoadConfig, gatewaysim.Run) }
