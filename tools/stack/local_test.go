package stack

import (
	"slices"
	"testing"
)

func TestInstancesRunEachServiceButTheGatewayNTimes(t *testing.T) {
	t.Parallel()
	one := LocalConfig{}.instances()
	if len(one) != len(Specs) {
		t.Fatalf("one instance each: %d processes, want %d", len(one), len(Specs))
	}
	two := LocalConfig{Instances: 2}.instances()
	if len(two) != 2*len(Specs)-1 {
		t.Fatalf("two instances: %d processes, want %d", len(two), 2*len(Specs)-1)
	}
	ports := map[int]string{}
	var names []string
	for _, i := range two {
		if other, ok := ports[i.Port]; ok {
			t.Fatalf("%s and %s share port %d", i.Name, other, i.Port)
		}
		ports[i.Port] = i.Name
		names = append(names, i.Name)
		if i.Name == "order-service-2" && (i.Program != "order-service" || i.Port != 8180) {
			t.Fatalf("order-service-2 = %+v, want the order-service binary on 8180", i)
		}
	}
	if slices.Contains(names, "payment-gateway-2") || !slices.Contains(names, "audit-service-2") {
		t.Fatalf("processes %v: want a second instance of each service and one gateway", names)
	}
	l := &Local{specs: two}
	if got := l.Names(); len(got) != 10 || slices.Contains(got, "payment-gateway") {
		t.Fatalf("Names() = %v, want the ten service instances without the gateway simulator", got)
	}
}
