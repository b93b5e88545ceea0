// Package tracecheck reads one trace from Jaeger's query API and says
// whether it is one whole order: every process of the saga present, one
// root, no span whose parent is missing. tools/cmd/tracecheck posts an
// order and checks its trace; `make check-tracing` runs it in CI.
package tracecheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// ErrNotFound says Jaeger holds no span of the trace (yet).
var ErrNotFound = errors.New("trace not found")

// Span is one span of a trace, as Jaeger's query API gives it.
type Span struct {
	SpanID    string
	ParentID  string // "" for a root
	Service   string
	Operation string
	Start     time.Time
	Duration  time.Duration
}

// Trace is the spans of one trace.
type Trace struct {
	ID    string
	Spans []Span
}

// jaegerRef is a span's reference to another span.
type jaegerRef struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// jaegerTrace is the JSON of GET /api/traces/{id}.
type jaegerTrace struct {
	Data []struct {
		TraceID string `json:"traceID"`
		Spans   []struct {
			SpanID        string      `json:"spanID"`
			OperationName string      `json:"operationName"`
			References    []jaegerRef `json:"references"`
			StartTime     int64       `json:"startTime"` // µs since the epoch
			Duration      int64       `json:"duration"`  // µs
			ProcessID     string      `json:"processID"`
		} `json:"spans"`
		Processes map[string]struct {
			ServiceName string `json:"serviceName"`
		} `json:"processes"`
	} `json:"data"`
}

// Fetch reads the trace id from the Jaeger query API at base (for example
// http://127.0.0.1:16686).
func Fetch(ctx context.Context, client *http.Client, base, id string) (Trace, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/api/traces/"+id, nil)
	if err != nil {
		return Trace{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Trace{}, fmt.Errorf("jaeger query API: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return Trace{}, fmt.Errorf("jaeger query API: %w", err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return Trace{}, fmt.Errorf("trace %s: %w", id, ErrNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return Trace{}, fmt.Errorf("jaeger query API: GET /api/traces/%s: %s: %s", id, resp.Status, strings.TrimSpace(string(body)))
	}
	return decode(id, body)
}

func decode(id string, body []byte) (Trace, error) {
	var jt jaegerTrace
	if err := json.Unmarshal(body, &jt); err != nil {
		return Trace{}, fmt.Errorf("jaeger query API: trace %s: %w", id, err)
	}
	t := Trace{ID: id}
	for _, d := range jt.Data {
		for _, s := range d.Spans {
			sp := Span{SpanID: s.SpanID, Service: d.Processes[s.ProcessID].ServiceName, Operation: s.OperationName,
				Start: time.UnixMicro(s.StartTime), Duration: time.Duration(s.Duration) * time.Microsecond}
			sp.ParentID = parentOf(s.References, d.TraceID)
			t.Spans = append(t.Spans, sp)
		}
	}
	if len(t.Spans) == 0 {
		return Trace{}, fmt.Errorf("trace %s: %w", id, ErrNotFound)
	}
	return t, nil
}

// parentOf returns the span id of a span's parent among its references:
// the first CHILD_OF in the trace, else the first reference in the trace.
// Jaeger writes the parent first, and as FOLLOWS_FROM when the span also
// links to it (the OTLP translator gives the reference the link's type):
// a consumer span's parent is the producer span it also links to.
func parentOf(refs []jaegerRef, traceID string) string {
	for _, r := range refs {
		if r.RefType == "CHILD_OF" && r.TraceID == traceID {
			return r.SpanID
		}
	}
	for _, r := range refs {
		if r.TraceID == traceID {
			return r.SpanID
		}
	}
	return ""
}

// Shape is what a trace is missing to be one whole order.
type Shape struct {
	MissingServices []string
	Roots           []Span
	Orphans         []Span // spans whose parent is not in the trace
}

// Whole says whether the trace has every service, one root and no orphan.
func (s Shape) Whole() bool {
	return len(s.MissingServices) == 0 && len(s.Roots) == 1 && len(s.Orphans) == 0
}

func (s Shape) String() string {
	return fmt.Sprintf("missing services %v, %d roots, %d spans whose parent is missing", s.MissingServices, len(s.Roots), len(s.Orphans))
}

// ShapeOf checks t against the services that must appear in it.
func ShapeOf(t Trace, services []string) Shape {
	var sh Shape
	ids := make(map[string]bool, len(t.Spans))
	seen := map[string]bool{}
	for _, s := range t.Spans {
		ids[s.SpanID] = true
		seen[s.Service] = true
	}
	for _, name := range services {
		if !seen[name] {
			sh.MissingServices = append(sh.MissingServices, name)
		}
	}
	for _, s := range t.Spans {
		switch {
		case s.ParentID == "":
			sh.Roots = append(sh.Roots, s)
		case !ids[s.ParentID]:
			sh.Orphans = append(sh.Orphans, s)
		}
	}
	return sh
}

// Summary prints the trace as a tree: each span with its service, its
// start from the root's and its duration.
func Summary(t Trace) string {
	children := map[string][]Span{}
	var roots []Span
	ids := map[string]bool{}
	for _, s := range t.Spans {
		ids[s.SpanID] = true
	}
	for _, s := range t.Spans {
		if s.ParentID == "" || !ids[s.ParentID] {
			roots = append(roots, s)
			continue
		}
		children[s.ParentID] = append(children[s.ParentID], s)
	}
	byStart := func(s []Span) {
		sort.Slice(s, func(i, j int) bool { return s[i].Start.Before(s[j].Start) })
	}
	byStart(roots)
	if len(roots) == 0 {
		return ""
	}
	t0 := roots[0].Start
	var end time.Time
	services := map[string]int{}
	for _, s := range t.Spans {
		services[s.Service]++
		if e := s.Start.Add(s.Duration); e.After(end) {
			end = e
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s: %d spans, %s from the first span's start to the last one's end\n", t.ID, len(t.Spans), end.Sub(t0).Round(time.Microsecond))
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  %-22s %3d spans\n", n, services[n])
	}
	var walk func(s Span, depth int)
	walk = func(s Span, depth int) {
		fmt.Fprintf(&b, "%9.2f ms %8.2f ms  %s%s: %s\n", float64(s.Start.Sub(t0).Microseconds())/1000,
			float64(s.Duration.Microseconds())/1000, strings.Repeat("  ", depth), s.Service, s.Operation)
		kids := children[s.SpanID]
		byStart(kids)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	b.WriteString("    start   duration  span\n")
	for _, r := range roots {
		walk(r, 0)
	}
	return b.String()
}
