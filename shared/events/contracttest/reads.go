package contracttest

import (
	"slices"
	"testing"

	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/subjects"
)

// CheckConsumers fails t for every event type one of service's consumer
// filters delivers that contract.json does not say the service reads, and
// for every filter that delivers no event type at all. The contract's
// "reads" may list more than the filters deliver (a service also decodes
// stored events it reads directly); it may not list less, so contract.json
// is the one place that says who consumes what, and make check-schemas
// holds every type it names to the previous release's readers.
func CheckConsumers(t testing.TB, service string, filters []string) {
	t.Helper()
	c := events.ContractOf()
	types := make([]events.Type, 0, len(c.Produce))
	for typ := range c.Produce {
		types = append(types, typ)
	}
	slices.Sort(types)
	for _, f := range filters {
		matched := false
		for _, typ := range types {
			subject, err := events.Subject(typ, "contract-check")
			if err != nil {
				t.Errorf("contract check of %s: %v", service, err)
				return
			}
			if !subjects.Matches(f, subject) {
				continue
			}
			matched = true
			if !c.Reads(service, typ) {
				t.Errorf("%s consumes %s events (filter %s), and shared/events/contract.json does not say it reads that type", service, typ, f)
			}
		}
		if !matched {
			t.Errorf("%s has a consumer filter %s that delivers no event type of shared/events/contract.json", service, f)
		}
	}
}
