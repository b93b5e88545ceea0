package schemacompat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// eventFile names an event schema or golden sample: <type>.v<N>.json.
var eventFile = regexp.MustCompile(`^((?:order|inventory|payment|notification)\.[a-z]+)\.v([0-9]+)\.json$`)

// Step is one version of a type checked against the version before it.
type Step struct {
	Type     string
	From, To int
	Problems []Problem
}

// Report is what the gate found: every type's versions, and each step.
type Report struct {
	Versions map[string][]int // type -> its versions, ascending
	Steps    []Step
}

// OK reports whether no step has a problem.
func (r Report) OK() bool {
	for _, s := range r.Steps {
		if len(s.Problems) > 0 {
			return false
		}
	}
	return true
}

// Write prints the report as a table, then every problem.
func (r Report) Write(w io.Writer) {
	types := make([]string, 0, len(r.Versions))
	for t := range r.Versions {
		types = append(types, t)
	}
	sort.Strings(types)
	fmt.Fprintf(w, "%-22s %-10s %s\n", "event type", "versions", "compatibility")
	for _, t := range types {
		vs := r.Versions[t]
		names := make([]string, len(vs))
		for i, v := range vs {
			names[i] = "v" + strconv.Itoa(v)
		}
		verdict := "only one version"
		for _, s := range r.Steps {
			if s.Type != t {
				continue
			}
			if verdict == "only one version" {
				verdict = ""
			} else {
				verdict += ", "
			}
			if len(s.Problems) == 0 {
				verdict += fmt.Sprintf("v%d accepts v%d", s.To, s.From)
			} else {
				verdict += fmt.Sprintf("v%d BREAKS v%d (%d problems)", s.To, s.From, len(s.Problems))
			}
		}
		fmt.Fprintf(w, "%-22s %-10s %s\n", t, strings.Join(names, ","), verdict)
	}
	for _, s := range r.Steps {
		for _, p := range s.Problems {
			fmt.Fprintf(w, "%s v%d -> v%d: %s\n", s.Type, s.From, s.To, p)
		}
	}
}

// Check compares every version of every event type in schemas with the
// version before it, and validates the golden samples (full events, their
// data checked) of each earlier version against every later schema.
func Check(schemas, golden fs.FS) (Report, error) {
	versions, err := scan(schemas)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Versions: versions}
	types := make([]string, 0, len(versions))
	for t := range versions {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		vs := versions[t]
		for i := 1; i < len(vs); i++ {
			step, err := checkStep(schemas, golden, t, vs[i-1], vs[i], vs[:i])
			if err != nil {
				return rep, err
			}
			rep.Steps = append(rep.Steps, step)
		}
	}
	return rep, nil
}

func scan(schemas fs.FS) (map[string][]int, error) {
	entries, err := fs.ReadDir(schemas, ".")
	if err != nil {
		return nil, fmt.Errorf("read schemas: %w", err)
	}
	out := map[string][]int{}
	for _, e := range entries {
		m := eventFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		v, _ := strconv.Atoi(m[2])
		out[m[1]] = append(out[m[1]], v)
	}
	for t := range out {
		sort.Ints(out[t])
	}
	return out, nil
}

func fileName(t string, v int) string { return fmt.Sprintf("%s.v%d.json", t, v) }

// checkStep compares version to with from, and validates the golden
// samples of every earlier version against to.
func checkStep(schemas, golden fs.FS, t string, from, to int, earlier []int) (Step, error) {
	step := Step{Type: t, From: from, To: to}
	prevRaw, err := fs.ReadFile(schemas, fileName(t, from))
	if err != nil {
		return step, err
	}
	nextRaw, err := fs.ReadFile(schemas, fileName(t, to))
	if err != nil {
		return step, err
	}
	prev, err := decode(prevRaw)
	if err != nil {
		return step, fmt.Errorf("%s: %w", fileName(t, from), err)
	}
	next, err := decode(nextRaw)
	if err != nil {
		return step, fmt.Errorf("%s: %w", fileName(t, to), err)
	}
	step.Problems = Compare(prev, next)

	c := jsonschema.NewCompiler()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(nextRaw))
	if err != nil {
		return step, fmt.Errorf("%s: %w", fileName(t, to), err)
	}
	loc := "file:///" + fileName(t, to)
	if err := c.AddResource(loc, doc); err != nil {
		return step, fmt.Errorf("%s: %w", fileName(t, to), err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return step, fmt.Errorf("%s is not a valid JSON Schema: %w", fileName(t, to), err)
	}
	for _, v := range earlier {
		raw, err := fs.ReadFile(golden, fileName(t, v))
		if err != nil {
			return step, fmt.Errorf("golden sample of %s v%d: %w", t, v, err)
		}
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(raw, &env); err != nil || len(env.Data) == 0 {
			return step, fmt.Errorf("golden sample of %s v%d: no event data (%v)", t, v, err)
		}
		data, err := jsonschema.UnmarshalJSON(bytes.NewReader(env.Data))
		if err != nil {
			return step, fmt.Errorf("golden sample of %s v%d: %w", t, v, err)
		}
		if err := sch.Validate(data); err != nil {
			step.Problems = append(step.Problems, Problem{Path: "golden " + path.Base(fileName(t, v)),
				What: fmt.Sprintf("the v%d sample is refused by v%d: %s", v, to, oneLine(err))})
		}
	}
	return step, nil
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
