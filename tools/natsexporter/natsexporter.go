// Package natsexporter serves what NATS servers report on their monitoring
// endpoints (/varz, /jsz, /healthz: JSON) in the Prometheus text format, so
// that the metrics store can scrape the broker like any service. The
// official exporter (nats-io/prometheus-nats-exporter) does this and more;
// it cannot be fetched on the machines this project builds on, and the few
// numbers the dashboards need fit in one file.
//
// Each scrape asks every server at once, with a timeout, and writes one
// sample per metric and server, labelled server_name. A server that does
// not answer shows nats_server_up{url} 0 and nothing else, so its other
// series go stale instead of repeating old values.
package natsexporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrInvalidOption is returned, wrapped, by New for a configuration that
// cannot work.
var ErrInvalidOption = errors.New("invalid natsexporter option")

// metric is one exported number of a server.
type metric struct {
	Name  string
	Help  string
	Type  string // gauge or counter
	value func(v *server.Varz, j *server.JSInfo) float64
}

// metrics are the exported numbers, in output order. Counters end in
// _total, sizes in _bytes.
var metrics = []metric{
	{Name: "nats_server_connections", Help: "Client connections open now.", Type: "gauge",
		value: func(v *server.Varz, _ *server.JSInfo) float64 { return float64(v.Connections) }},
	{Name: "nats_server_connections_total", Help: "Client connections accepted since the server started.", Type: "counter",
		value: func(v *server.Varz, _ *server.JSInfo) float64 { return float64(v.TotalConnections) }},
	{Name: "nats_server_routes", Help: "Cluster routes connected now.", Type: "gauge",
		value: func(v *server.Varz, _ *server.JSInfo) float64 { return float64(v.Routes) }},
	{Name: "nats_server_slow_consumers_total", Help: "Clients disconnected for being slow consumers.", Type: "counter",
		value: func(v *server.Varz, _ *server.JSInfo) float64 { return float64(v.SlowConsumers) }},
	{Name: "nats_server_in_msgs_total", Help: "Messages received (clients, routes, leaf nodes).", Type: "counter",
		value: func(v *server.Varz, _ *server.JSInfo) float64 { return float64(v.InMsgs) }},
	{Name: "nats_server_out_msgs_total", Help: "Messages sent (clients, routes, leaf nodes).", Type: "counter",
		value: func(v *server.Varz, _ *server.JSInfo) float64 { return float64(v.OutMsgs) }},
	{Name: "nats_server_in_bytes_total", Help: "Bytes received.", Type: "counter",
		value: func(v *server.Varz, _ *server.JSInfo) float64 { return float64(v.InBytes) }},
	{Name: "nats_server_out_bytes_total", Help: "Bytes sent.", Type: "counter",
		value: func(v *server.Varz, _ *server.JSInfo) float64 { return float64(v.OutBytes) }},
	{Name: "nats_server_mem_bytes", Help: "Resident memory of the server process.", Type: "gauge",
		value: func(v *server.Varz, _ *server.JSInfo) float64 { return float64(v.Mem) }},
	{Name: "nats_server_cpu_percent", Help: "CPU use of the server process, in percent of one core.", Type: "gauge",
		value: func(v *server.Varz, _ *server.JSInfo) float64 { return v.CPU }},
	{Name: "nats_jetstream_memory_bytes", Help: "JetStream memory storage in use.", Type: "gauge",
		value: func(_ *server.Varz, j *server.JSInfo) float64 { return float64(j.Memory) }},
	{Name: "nats_jetstream_storage_bytes", Help: "JetStream file storage in use.", Type: "gauge",
		value: func(_ *server.Varz, j *server.JSInfo) float64 { return float64(j.Store) }},
	{Name: "nats_jetstream_streams", Help: "Streams this server holds (a replica counts on every server that has one).", Type: "gauge",
		value: func(_ *server.Varz, j *server.JSInfo) float64 { return float64(j.Streams) }},
	{Name: "nats_jetstream_consumers", Help: "Consumers this server holds.", Type: "gauge",
		value: func(_ *server.Varz, j *server.JSInfo) float64 { return float64(j.Consumers) }},
	{Name: "nats_jetstream_messages", Help: "Messages stored in the streams this server holds.", Type: "gauge",
		value: func(_ *server.Varz, j *server.JSInfo) float64 { return float64(j.Messages) }},
	{Name: "nats_jetstream_api_requests_total", Help: "JetStream API requests this server handled.", Type: "counter",
		value: func(_ *server.Varz, j *server.JSInfo) float64 { return float64(j.API.Total) }},
	{Name: "nats_jetstream_api_errors_total", Help: "JetStream API requests that returned an error.", Type: "counter",
		value: func(_ *server.Varz, j *server.JSInfo) float64 { return float64(j.API.Errors) }},
}

// Exporter polls NATS monitoring endpoints on every scrape.
type Exporter struct {
	urls    []string
	client  *http.Client
	timeout time.Duration
}

// New returns an exporter of the servers whose monitoring endpoints are at
// urls (http://host:8222), asking each for at most timeout per scrape.
func New(urls []string, timeout time.Duration) (*Exporter, error) {
	if len(urls) == 0 {
		return nil, fmt.Errorf("no monitoring URL: %w", ErrInvalidOption)
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("timeout %s: want > 0: %w", timeout, ErrInvalidOption)
	}
	clean := make([]string, 0, len(urls))
	for _, u := range urls {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("monitoring URL %q: want http://host:port: %w", u, ErrInvalidOption)
		}
		clean = append(clean, strings.TrimRight(u, "/"))
	}
	return &Exporter{urls: clean, client: &http.Client{}, timeout: timeout}, nil
}

// sample is what one server answered.
type sample struct {
	url     string
	varz    *server.Varz
	jsz     *server.JSInfo
	healthy bool
	err     error
}

// ServeHTTP writes the metrics of every server in the Prometheus text
// format (version 0.0.4).
func (e *Exporter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), e.timeout)
	defer cancel()
	samples := make([]sample, len(e.urls))
	var wg sync.WaitGroup
	for i, u := range e.urls {
		wg.Go(func() { samples[i] = e.poll(ctx, u) })
	}
	wg.Wait()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = io.WriteString(w, format(samples)) // a client that went away needs no answer
}

func (e *Exporter) poll(ctx context.Context, base string) sample {
	s := sample{url: base}
	var v server.Varz
	if s.err = e.get(ctx, base+"/varz", &v); s.err != nil {
		return s
	}
	s.varz = &v
	var j server.JSInfo
	if err := e.get(ctx, base+"/jsz", &j); err == nil && !j.Disabled {
		s.jsz = &j
	}
	// /healthz answers 503 with a JSON body when JetStream is not current.
	s.healthy = e.get(ctx, base+"/healthz", &struct{}{}) == nil
	return s
}

func (e *Exporter) get(ctx context.Context, u string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(into)
}

// format renders samples in the Prometheus text format.
func format(samples []sample) string {
	sort.Slice(samples, func(a, b int) bool { return samples[a].url < samples[b].url })
	var b strings.Builder
	b.WriteString("# HELP nats_server_up 1 if the server's monitoring endpoint answered /varz at this scrape.\n# TYPE nats_server_up gauge\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "nats_server_up{url=%s} %d\n", strconv.Quote(s.url), boolInt(s.err == nil))
	}
	b.WriteString("# HELP nats_server_healthy 1 if /healthz answered 200 (JetStream current), else 0.\n# TYPE nats_server_healthy gauge\n")
	for _, s := range samples {
		if s.varz != nil {
			fmt.Fprintf(&b, "nats_server_healthy{server_name=%s} %d\n", strconv.Quote(s.varz.Name), boolInt(s.healthy))
		}
	}
	for _, m := range metrics {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", m.Name, m.Help, m.Name, m.Type)
		for _, s := range samples {
			if s.varz == nil {
				continue
			}
			j := s.jsz
			if j == nil {
				if strings.HasPrefix(m.Name, "nats_jetstream_") {
					continue
				}
				j = &server.JSInfo{}
			}
			fmt.Fprintf(&b, "%s{server_name=%s} %s\n", m.Name, strconv.Quote(s.varz.Name),
				strconv.FormatFloat(m.value(s.varz, j), 'g', -1, 64))
		}
	}
	return b.String()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
