package natsexporter_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/eventshop/tools/natsexporter"
)

// startNATS runs a real nats-server with JetStream and its monitoring
// endpoint on free ports.
func startNATS(t *testing.T, name string) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		ServerName: name, Host: "127.0.0.1", Port: -1, HTTPHost: "127.0.0.1", HTTPPort: -1,
		JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(body)
}

// value returns the sample name{label="v"} of a text exposition.
func value(text, name, label, v string) (float64, error) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(fmt.Sprintf("%s{%s=%q}", name, label, v)) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return 0, errors.New("no sample")
	}
	return strconv.ParseFloat(m[1], 64)
}

func TestExporterReportsEveryServerAndOneThatIsDown(t *testing.T) {
	t.Parallel()
	a := startNATS(t, "nats-a")
	b := startNATS(t, "nats-b")
	nc, err := nats.Connect(a.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := js.Publish(fmt.Sprintf("orders.%d.created", i), []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	monA, monB := "http://"+a.MonitorAddr().String(), "http://"+b.MonitorAddr().String()
	exp, err := natsexporter.New([]string{monA, monB + "/"}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(exp)
	defer srv.Close()

	text := scrape(t, srv.URL)
	for _, c := range []struct {
		name, label, v string
		want           float64
	}{
		{"nats_server_up", "url", monA, 1},
		{"nats_server_up", "url", monB, 1},
		{"nats_server_healthy", "server_name", "nats-a", 1},
		{"nats_jetstream_streams", "server_name", "nats-a", 1},
		{"nats_jetstream_messages", "server_name", "nats-a", 3},
		{"nats_jetstream_streams", "server_name", "nats-b", 0},
		{"nats_server_connections", "server_name", "nats-a", 1},
		{"nats_server_connections", "server_name", "nats-b", 0},
	} {
		got, err := value(text, c.name, c.label, c.v)
		if err != nil || got != c.want {
			t.Errorf("%s{%s=%q} = %v, %v; want %v\n%s", c.name, c.label, c.v, got, err, c.want, text)
		}
	}
	if got, err := value(text, "nats_server_mem_bytes", "server_name", "nats-a"); err != nil || got <= 0 {
		t.Errorf("nats_server_mem_bytes = %v, %v; want > 0", got, err)
	}

	// A server that stops answering is reported down, the other still
	// measured, and the scrape still succeeds.
	b.Shutdown()
	text = scrape(t, srv.URL)
	if got, err := value(text, "nats_server_up", "url", monB); err != nil || got != 0 {
		t.Errorf("after shutdown nats_server_up{url=%q} = %v, %v; want 0", monB, got, err)
	}
	if _, err := value(text, "nats_server_connections", "server_name", "nats-b"); err == nil {
		t.Errorf("a server that is down still has samples:\n%s", text)
	}
	if got, err := value(text, "nats_jetstream_messages", "server_name", "nats-a"); err != nil || got != 3 {
		t.Errorf("nats_jetstream_messages{nats-a} = %v, %v; want 3", got, err)
	}
}

func TestNewRefusesUnusableOptions(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		urls    []string
		timeout time.Duration
	}{
		{"no url", nil, time.Second},
		{"not http", []string{"nats://127.0.0.1:4222"}, time.Second},
		{"no host", []string{"http://"}, time.Second},
		{"no timeout", []string{"http://127.0.0.1:8222"}, 0},
	} {
		if _, err := natsexporter.New(c.urls, c.timeout); !errors.Is(err, natsexporter.ErrInvalidOption) {
			t.Errorf("%s: err = %v, want ErrInvalidOption", c.name, err)
		}
	}
}
