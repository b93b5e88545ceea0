package e2e

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// receivedSpan is one span an OTLP exporter sent.
type receivedSpan struct {
	Service string
	Name    string
	Kind    tracepb.Span_SpanKind
	TraceID string
	SpanID  string
	Parent  string // "" for a root
}

func (s receivedSpan) String() string {
	return fmt.Sprintf("%s %q (%s) %s<-%s", s.Service, s.Name, s.Kind, s.SpanID, s.Parent)
}

// otlpReceiver is a minimal OTLP/HTTP traces endpoint: it decodes the
// protobuf ExportTraceServiceRequest that every service's exporter posts to
// /v1/traces and keeps the spans by trace id.
type otlpReceiver struct {
	srv *http.Server
	ln  net.Listener

	mu     sync.Mutex
	traces map[string][]receivedSpan
	errs   []string
}

func startOTLPReceiver() (*otlpReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &otlpReceiver{ln: ln, traces: map[string][]receivedSpan{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	r.srv = &http.Server{Handler: mux}
	go func() { _ = r.srv.Serve(ln) }() // returns ErrServerClosed at Close
	return r, nil
}

// Endpoint is the base URL for OTEL_EXPORTER_OTLP_ENDPOINT.
func (r *otlpReceiver) Endpoint() string { return "http://" + r.ln.Addr().String() }

func (r *otlpReceiver) Close() error { return r.srv.Close() }

func (r *otlpReceiver) export(w http.ResponseWriter, req *http.Request) {
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		r.fail(w, http.StatusUnsupportedMediaType, "content type %q, want application/x-protobuf", ct)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			r.fail(w, http.StatusBadRequest, "gzip: %v", err)
			return
		}
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		r.fail(w, http.StatusBadRequest, "read: %v", err)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &msg); err != nil {
		r.fail(w, http.StatusBadRequest, "decode: %v", err)
		return
	}
	r.mu.Lock()
	for _, rs := range msg.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s := receivedSpan{
					Service: service, Name: sp.GetName(), Kind: sp.GetKind(),
					TraceID: hex.EncodeToString(sp.GetTraceId()), SpanID: hex.EncodeToString(sp.GetSpanId()),
				}
				if len(sp.GetParentSpanId()) > 0 {
					s.Parent = hex.EncodeToString(sp.GetParentSpanId())
				}
				r.traces[s.TraceID] = append(r.traces[s.TraceID], s)
			}
		}
	}
	r.mu.Unlock()
	out, err := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	if err != nil {
		r.fail(w, http.StatusInternalServerError, "encode: %v", err)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out) // the exporter retries a failed export
}

func (r *otlpReceiver) fail(w http.ResponseWriter, code int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.errs = append(r.errs, msg)
	r.mu.Unlock()
	http.Error(w, msg, code)
}

// Trace returns the spans received for a trace id.
func (r *otlpReceiver) Trace(traceID string) []receivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedSpan(nil), r.traces[traceID]...)
}

// Errors returns what the receiver refused.
func (r *otlpReceiver) Errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// traceShape checks one trace: which of the wanted services are missing,
// the roots (spans without a parent), and the orphans (spans whose parent
// is not in the trace).
func traceShape(spans []receivedSpan, services []string) (missing []string, roots, orphans []receivedSpan) {
	ids := map[string]bool{}
	have := map[string]bool{}
	for _, s := range spans {
		ids[s.SpanID] = true
		have[s.Service] = true
	}
	for _, name := range services {
		if !have[name] {
			missing = append(missing, name)
		}
	}
	for _, s := range spans {
		switch {
		case s.Parent == "":
			roots = append(roots, s)
		case !ids[s.Parent]:
			orphans = append(orphans, s)
		}
	}
	return missing, roots, orphans
}

// describeTrace lists a trace's spans, one a line, for a failure message.
func describeTrace(spans []receivedSpan) string {
	lines := make([]string, len(spans))
	for i, s := range spans {
		lines[i] = s.String()
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
