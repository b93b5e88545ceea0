package schemacompat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Contract is shared/events/contract.json: who produces and reads each
// event type, and the version producers emit. The gate reads the file as
// data rather than through shared/events, because it reads it at an
// earlier revision too (git show), where the Go code of this build does
// not apply.
type Contract struct {
	Produce  map[string]int `json:"produce"`
	Services []Party        `json:"services"`
}

// Party is one service of the contract. Reads "*" reads every type.
type Party struct {
	Name     string   `json:"name"`
	Produces []string `json:"produces"`
	Reads    []string `json:"reads"`
}

// ParseContract decodes contract.json.
func ParseContract(raw []byte) (Contract, error) {
	var c Contract
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("contract.json: %w", err)
	}
	return c, nil
}

// Release is what a released build reads: every version of each type
// whose schema file it embeds (its decoder refuses any other).
type Release struct {
	Name     string           // the revision, as given
	Versions map[string][]int // type ("order.created") -> versions
}

// ReleaseAt lists the event schemas of the tree at git revision rev of
// the repository at root, without touching the checkout.
func ReleaseAt(root, rev string) (Release, error) {
	out, err := exec.Command("git", "-C", root, "ls-tree", "--name-only", rev+":shared/events/schemas").CombinedOutput()
	if err != nil {
		return Release{}, fmt.Errorf("the event schemas at %s: %s (a shallow clone? git fetch --unshallow): %w",
			rev, strings.TrimSpace(string(out)), err)
	}
	versions := map[string][]int{}
	for name := range strings.FieldsSeq(string(out)) {
		if m := eventFile.FindStringSubmatch(name); m != nil {
			v, _ := strconv.Atoi(m[2])
			versions[m[1]] = append(versions[m[1]], v)
		}
	}
	for t := range versions {
		sort.Ints(versions[t])
	}
	return Release{Name: rev, Versions: versions}, nil
}

// typeName is a contract type ("shop.order.created") as the schema files
// name it ("order.created").
func typeName(t string) string { return strings.TrimPrefix(t, "shop.") }

// CheckContract holds the contract to the schemas of this tree (versions)
// and to the previous release: every type is produced by one service at a
// version this tree has, read by some service, and the previous release
// already reads the produced version. During a rolling upgrade, instances
// of the previous release read what the new ones produce (the producer's
// own old instances included); a version they do not know is an event
// they refuse. So a new version is first released read-only, and produced
// one release later.
func CheckContract(c Contract, versions map[string][]int, prev *Release) []string {
	var problems []string
	producers, readers := c.parties()
	for _, t := range sortedKeys(versions) {
		full := "shop." + t
		v, ok := c.Produce[full]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: contract.json names no produced version", t))
			continue
		case !slices.Contains(versions[t], v):
			problems = append(problems, fmt.Sprintf("%s: producers emit v%d, and there is no %s", t, v, fileName(t, v)))
			continue
		}
		if n := len(producers[full]); n != 1 {
			problems = append(problems, fmt.Sprintf("%s: %d producers in contract.json (%s), want one", t, n, strings.Join(producers[full], ", ")))
		}
		if len(readers[full]) == 0 {
			problems = append(problems, fmt.Sprintf("%s: no service reads it", t))
		}
		if prev != nil && !slices.Contains(prev.Versions[t], v) {
			problems = append(problems, fmt.Sprintf("%s v%d is produced, and the previous release (%s) reads only %s: "+
				"its instances refuse these events while a rolling upgrade runs. Release the version read-only first "+
				"(contract.json produce: v%d), then produce it in the next release",
				t, v, prev.Name, vlist(prev.Versions[t]), maxBelow(versions[t], v)))
		}
	}
	for full := range c.Produce {
		if _, ok := versions[typeName(full)]; !ok {
			problems = append(problems, fmt.Sprintf("%s: in contract.json, and no schema file", full))
		}
	}
	sort.Strings(problems)
	return problems
}

// parties returns the producers and the readers of each type.
func (c Contract) parties() (producers, readers map[string][]string) {
	producers, readers = map[string][]string{}, map[string][]string{}
	for _, p := range c.Services {
		for _, t := range p.Produces {
			producers[t] = append(producers[t], p.Name)
		}
		for _, t := range p.Reads {
			if t == "*" {
				for full := range c.Produce {
					readers[full] = append(readers[full], p.Name)
				}
				continue
			}
			readers[t] = append(readers[t], p.Name)
		}
	}
	for _, m := range []map[string][]string{producers, readers} {
		for t := range m {
			sort.Strings(m[t])
		}
	}
	return producers, readers
}

// WriteContract prints who produces which version of each type, who reads
// it, and what the previous release reads.
func WriteContract(w io.Writer, c Contract, versions map[string][]int, prev *Release) {
	producers, readers := c.parties()
	prevHead := "previous release reads"
	if prev != nil {
		prevHead = fmt.Sprintf("%s reads", short(prev.Name))
	}
	fmt.Fprintf(w, "%-22s %-9s %-21s %-14s %s\n", "event type", "produced", "producer", prevHead, "readers (every version of this tree)")
	for _, t := range sortedKeys(versions) {
		full := "shop." + t
		p := "-"
		if prev != nil {
			p = vlist(prev.Versions[t])
		}
		fmt.Fprintf(w, "%-22s %-9s %-21s %-14s %s\n", t, "v"+strconv.Itoa(c.Produce[full]),
			strings.Join(producers[full], ","), p, strings.Join(readers[full], ", "))
	}
}

func vlist(vs []int) string {
	if len(vs) == 0 {
		return "nothing"
	}
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = "v" + strconv.Itoa(v)
	}
	return strings.Join(names, ",")
}

// maxBelow is the newest version before v (the one to keep producing).
func maxBelow(vs []int, v int) int {
	best := 0
	for _, x := range vs {
		if x < v && x > best {
			best = x
		}
	}
	return best
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// ProducedAt returns the version producers emit of each type ("shop.order.created"
// -> 2) in the tree at git revision rev of the repository at root, or in
// the working tree for rev "". A tree from before contract.json produced
// the newest version of each type.
func ProducedAt(root, rev string) (map[string]int, error) {
	var raw []byte
	if rev == "" {
		b, err := os.ReadFile(filepath.Join(root, "shared", "events", "contract.json"))
		if err != nil {
			return nil, err
		}
		raw = b
	} else {
		b, err := exec.Command("git", "-C", root, "show", rev+":shared/events/contract.json").Output()
		if err != nil {
			release, rerr := ReleaseAt(root, rev)
			if rerr != nil {
				return nil, rerr
			}
			produced := map[string]int{}
			for t, vs := range release.Versions {
				produced["shop."+t] = vs[len(vs)-1]
			}
			return produced, nil
		}
		raw = b
	}
	c, err := ParseContract(raw)
	if err != nil {
		return nil, err
	}
	return c.Produce, nil
}
