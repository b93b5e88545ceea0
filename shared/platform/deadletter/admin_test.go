package deadletter_test

import (
	"encoding/json"
	"github.com/eventshop/shared/platform/deadletter/view"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/natstest"
	"github.com/eventshop/shared/platform/problem"
)

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	e := setup(t)
	var broken atomic.Bool
	broken.Store(true)
	var handled atomic.Int32
	twoConsumers(t, e, &broken, &handled)
	s1 := e.publish(t, "t.x.created", `{"n":1}`)
	s2 := e.publish(t, "t.y.created", "not json \x00")
	for _, d := range []string{"a", "b"} {
		for _, s := range []uint64{s1, s2} {
			natstest.DeadLetter(t, e.js, d, "T", s)
		}
	}
	broken.Store(false)

	srv, err := httpserver.New(httpserver.Config{Addr: "127.0.0.1:0", Service: "test"}, zap.NewNop(), e.reg,
		func(error) problem.Problem { return problem.Internal() })
	if err != nil {
		t.Fatal(err)
	}
	deadletter.NewAdmin(e.letters(t), zap.NewNop()).Register(srv.Engine.Group("/admin", httpserver.BearerAuth("s3cret")))
	ts := httptest.NewServer(srv.Engine)
	t.Cleanup(ts.Close)

	call := func(t *testing.T, method, path, token string, out any) int {
		t.Helper()
		req, err := http.NewRequest(method, ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != problem.ContentType {
			t.Errorf("%s %s: %d with %s, want problem+json", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if out != nil {
			if err := json.Unmarshal(body, out); err != nil {
				t.Fatalf("%s %s: decode %q: %v", method, path, body, err)
			}
		}
		return resp.StatusCode
	}
	type list struct {
		Count       int           `json:"count"`
		DeadLetters []view.Letter `json:"dead_letters"`
	}

	var all list
	if code := call(t, http.MethodGet, "/admin/dlq", "s3cret", &all); code != http.StatusOK || all.Count != 4 {
		t.Fatalf("list = %d %+v, want 4 letters", code, all)
	}
	var ofA view.Letter
	for _, v := range all.DeadLetters {
		if v.Consumer == "a" && v.OriginalSequence == s1 {
			ofA = v
		}
	}
	var binary view.Letter
	for _, v := range all.DeadLetters {
		if v.Consumer == "a" && v.OriginalSequence == s2 {
			binary = v
		}
	}

	tests := []struct {
		name, method, path, token string
		want                      int
		wantType                  string
	}{
		{"no token", http.MethodGet, "/admin/dlq", "", http.StatusUnauthorized, "urn:eventshop:problem:unauthorized"},
		{"wrong token", http.MethodPost, "/admin/dlq/replay?all=true", "guess", http.StatusUnauthorized, "urn:eventshop:problem:unauthorized"},
		{"bad sequence", http.MethodGet, "/admin/dlq/abc", "s3cret", http.StatusBadRequest, "urn:eventshop:problem:invalid-dead-letter-sequence"},
		{"unknown sequence", http.MethodGet, "/admin/dlq/9999", "s3cret", http.StatusNotFound, "urn:eventshop:problem:dead-letter-not-found"},
		{"bad subject filter", http.MethodGet, "/admin/dlq?subject=t..x", "s3cret", http.StatusBadRequest, "urn:eventshop:problem:invalid-dead-letter-filter"},
		{"bulk replay needs a filter or all", http.MethodPost, "/admin/dlq/replay", "s3cret", http.StatusBadRequest, "urn:eventshop:problem:invalid-dead-letter-filter"},
		{"bulk discard needs a filter or all", http.MethodDelete, "/admin/dlq", "s3cret", http.StatusBadRequest, "urn:eventshop:problem:invalid-dead-letter-filter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p problem.Problem
			if code := call(t, tt.method, tt.path, tt.token, &p); code != tt.want || p.Type != tt.wantType {
				t.Fatalf("%d %+v, want %d %s", code, p, tt.want, tt.wantType)
			}
		})
	}

	var filtered list
	if code := call(t, http.MethodGet, "/admin/dlq?consumer=a&subject=t.*.created", "s3cret", &filtered); code != http.StatusOK || filtered.Count != 2 {
		t.Fatalf("list a = %d %+v", code, filtered)
	}
	var shown view.Letter
	if code := call(t, http.MethodGet, "/admin/dlq/"+strconv.FormatUint(ofA.Sequence, 10), "s3cret", &shown); code != http.StatusOK ||
		string(shown.Data) != `{"n":1}` || shown.Headers["traceparent"][0] != traceparent || shown.TraceID == "" || shown.OrderID != "x" {
		t.Fatalf("show = %d %+v", code, shown)
	}
	var shownBinary view.Letter
	if code := call(t, http.MethodGet, "/admin/dlq/"+strconv.FormatUint(binary.Sequence, 10), "s3cret", &shownBinary); code != http.StatusOK ||
		shownBinary.Data != nil || shownBinary.DataBase64 == "" {
		t.Fatalf("show of a non-JSON payload = %d %+v, want base64", code, shownBinary)
	}

	var rep view.Replay
	path := "/admin/dlq/" + strconv.FormatUint(ofA.Sequence, 10)
	if code := call(t, http.MethodPost, path+"/replay", "s3cret", &rep); code != http.StatusOK || rep.ReplaySequence == 0 || rep.Duplicate {
		t.Fatalf("replay = %d %+v", code, rep)
	}
	var p problem.Problem
	if code := call(t, http.MethodPost, path+"/replay", "s3cret", &p); code != http.StatusConflict || p.Type != "urn:eventshop:problem:dead-letter-resolved" {
		t.Fatalf("second replay = %d %+v, want 409 resolved", code, p)
	}
	if code := call(t, http.MethodDelete, "/admin/dlq/"+strconv.FormatUint(binary.Sequence, 10), "s3cret", nil); code != http.StatusOK {
		t.Fatalf("discard = %d", code)
	}
	var bulk view.Bulk
	if code := call(t, http.MethodPost, "/admin/dlq/replay?consumer=b&subject=t.x.created", "s3cret", &bulk); code != http.StatusOK ||
		len(bulk.Replayed) != 1 || !bulk.Replayed[0].Duplicate || len(bulk.Failed) != 0 {
		t.Fatalf("replay b = %d %+v, want one duplicate replay", code, bulk)
	}
	if code := call(t, http.MethodDelete, "/admin/dlq?all=true", "s3cret", &bulk); code != http.StatusOK || len(bulk.Discarded) != 1 {
		t.Fatalf("discard all = %d %+v, want the last letter", code, bulk)
	}
	if code := call(t, http.MethodGet, "/admin/dlq", "s3cret", &all); code != http.StatusOK || all.Count != 0 {
		t.Fatalf("list at the end = %d %+v, want empty", code, all)
	}
	natstest.Eventually(t, "replayed copy handled by a and b", func() bool { return handled.Load() == 2 })
}
