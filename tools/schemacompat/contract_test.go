package schemacompat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleContract() Contract {
	return Contract{
		Produce: map[string]int{"shop.order.created": 1, "shop.order.confirmed": 1},
		Services: []Party{
			{Name: "order-service", Produces: []string{"shop.order.created", "shop.order.confirmed"}, Reads: []string{"shop.order.created"}},
			{Name: "notification-service", Reads: []string{"shop.order.confirmed"}},
			{Name: "audit-service", Reads: []string{"*"}},
		},
	}
}

func TestCheckContract(t *testing.T) {
	t.Parallel()
	tree := map[string][]int{"order.created": {1, 2}, "order.confirmed": {1}}
	prevV1 := &Release{Name: "prev", Versions: map[string][]int{"order.created": {1}, "order.confirmed": {1}}}
	prevV2 := &Release{Name: "prev", Versions: map[string][]int{"order.created": {1, 2}, "order.confirmed": {1}}}
	tests := []struct {
		name   string
		change func(c *Contract)
		prev   *Release
		want   string // "" passes
	}{
		{"v2 read, v1 produced, beside a v1-only release", func(*Contract) {}, prevV1, ""},
		{"v2 produced after a release that reads it", func(c *Contract) { c.Produce["shop.order.created"] = 2 }, prevV2, ""},
		{"no previous release given", func(c *Contract) { c.Produce["shop.order.created"] = 2 }, nil, ""},
		{"v2 produced straight after a release that reads only v1", func(c *Contract) { c.Produce["shop.order.created"] = 2 }, prevV1,
			"order.created v2 is produced, and the previous release (prev) reads only v1"},
		{"a produced version with no schema", func(c *Contract) { c.Produce["shop.order.created"] = 3 }, nil, "producers emit v3, and there is no order.created.v3.json"},
		{"a type without a produced version", func(c *Contract) { delete(c.Produce, "shop.order.confirmed") }, nil, "order.confirmed: contract.json names no produced version"},
		{"two producers", func(c *Contract) {
			c.Services[1].Produces = []string{"shop.order.confirmed"}
		}, nil, "order.confirmed: 2 producers"},
		{"no reader", func(c *Contract) {
			c.Services[1].Reads, c.Services[2].Reads = nil, []string{"shop.order.created"}
		}, nil, "order.confirmed: no service reads it"},
		{"a type the schemas do not have", func(c *Contract) { c.Produce["shop.order.shipped"] = 1 }, nil, "shop.order.shipped: in contract.json, and no schema file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := sampleContract()
			c.Produce = map[string]int{"shop.order.created": 1, "shop.order.confirmed": 1}
			tt.change(&c)
			problems := CheckContract(c, tree, tt.prev)
			got := strings.Join(problems, "\n")
			switch {
			case tt.want == "" && len(problems) > 0:
				t.Errorf("want no problem, got:\n%s", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("want a problem saying %q, got:\n%s", tt.want, got)
			}
		})
	}
}

// The repository's own contract holds against its schemas, and the
// previous release is read from git.
func TestTheRepositorysContract(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	raw, err := os.ReadFile(filepath.Join(root, "shared", "events", "contract.json"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseContract(raw)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Check(os.DirFS(filepath.Join(root, "shared", "events", "schemas")), os.DirFS(filepath.Join(root, "shared", "events", "testdata", "golden")))
	if err != nil {
		t.Fatal(err)
	}
	if p := CheckContract(c, rep.Versions, nil); len(p) > 0 {
		t.Errorf("contract.json: %s", strings.Join(p, "\n"))
	}
	// bf6c2a2 is the last commit where every type was at v1.
	prev, err := ReleaseAt(root, "bf6c2a2")
	if err != nil {
		t.Fatal(err)
	}
	if got := vlist(prev.Versions["order.created"]); got != "v1" || len(prev.Versions) != 11 {
		t.Errorf("bf6c2a2 reads order.created %s and %d types, want v1 and 11", got, len(prev.Versions))
	}
	before, err := ProducedAt(root, "bf6c2a2") // no contract.json there: the newest of each
	if err != nil || before["shop.order.created"] != 1 || len(before) != 11 {
		t.Errorf("ProducedAt(bf6c2a2) = %v, %v; want v1 of 11 types", before, err)
	}
	now, err := ProducedAt(root, "")
	if err != nil || now["shop.order.created"] != c.Produce["shop.order.created"] {
		t.Errorf("ProducedAt(working tree) = %v, %v; want contract.json's", now, err)
	}
	if _, err := ReleaseAt(root, "no-such-revision"); err == nil || !strings.Contains(err.Error(), "no-such-revision") {
		t.Errorf("an unknown revision: %v", err)
	}
}
