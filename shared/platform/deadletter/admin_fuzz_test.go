package deadletter

import (
	"encoding/base64"
	"encoding/json"
	"github.com/eventshop/shared/platform/deadletter/view"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/platform/subjects"
)

// FuzzAdminQuery holds what the dead-letter admin endpoints read from a
// request (the {seq} path parameter; consumer=, subject=, all= in the
// query) to their promise: what they accept is a sequence, a durable name
// and a NATS subject pattern that matches exactly what NATS itself would
// match; what they refuse is a 400 that says why; a bulk action on every
// letter needs all=true.
func FuzzAdminQuery(f *testing.F) {
	f.Add("12", "inventory-orders", "orders.*.created", "", true, "orders.o-1.created")
	f.Add("0", "", "", "", true, "orders.o-1.created")
	f.Add("18446744073709551616", "a.b", "orders..created", "true", false, "orders")
	f.Add("-1", "c*", "orders.>.x", "yes", true, "orders.a.b")
	f.Add("7", "c 1", "orders.>", "true", true, "orders.a.b.c")
	f.Add("1e3", "c", "*", "", true, "x")
	f.Add("", "c", "or*ders", "", false, "orders")
	gin.SetMode(gin.TestMode)
	f.Fuzz(func(t *testing.T, seq, cons, subject, all string, bulk bool, probe string) {
		q := url.Values{}
		for k, v := range map[string]string{"consumer": cons, "subject": subject, "all": all} {
			if v != "" {
				q.Set(k, v)
			}
		}
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest(http.MethodPost, "/dlq/replay?"+q.Encode(), nil)
		c.Params = gin.Params{{Key: "seq", Value: seq}}

		n, err := sequence(c)
		if want, perr := strconv.ParseUint(seq, 10, 64); err == nil {
			if perr != nil || n != want || n == 0 {
				t.Fatalf("sequence %q accepted as %d", seq, n)
			}
		} else {
			refused(t, err, "sequence "+strconv.Quote(seq))
		}

		fl, err := filter(c, bulk)
		if err != nil {
			refused(t, err, "filter "+q.Encode())
			return
		}
		if fl.Consumer != cons || fl.Subject != subject {
			t.Fatalf("filter %q read as %+v", q.Encode(), fl)
		}
		if bulk && fl.IsZero() && all != "true" {
			t.Fatalf("bulk action on every letter accepted without all=true: %q", q.Encode())
		}
		if strings.ContainsAny(cons, ".*> \t") || len(cons) > 255 {
			t.Fatalf("consumer %q accepted: not a durable name", cons)
		}
		if subject == "" {
			return
		}
		if !server.IsValidSubject(subject) {
			t.Fatalf("subject %q accepted, but NATS says it is not a subject pattern", subject)
		}
		if server.IsValidLiteralSubject(probe) {
			if got, want := subjects.Matches(subject, probe), server.SubjectMatchesFilter(probe, subject); got != want {
				t.Fatalf("subjects.Matches(%q, %q) = %v, NATS says %v", subject, probe, got, want)
			}
		}
	})
}

// refused checks that err is an admin error a client is told about: a 400
// problem with a reason.
func refused(t *testing.T, err error, what string) {
	t.Helper()
	p := mapError(err)
	if p.Status != http.StatusBadRequest || strings.TrimSpace(p.Detail) == "" {
		t.Fatalf("%s refused with %+v (%v), want a 400 saying why", what, p, err)
	}
}

// FuzzLetterHeaders holds the reading of a dead letter (Decode, of a
// letter or a tombstone) to its promise whatever headers and
// payload the letter carries -- the original message's headers are copied
// into it, and they are whatever its publisher wrote: no panic; the
// original headers shown never include the Dlq-* and Nats-* ones; where
// the original was is read from the headers, and from the subject
// (dlq.<consumer>.<stream>.<seq>) where a header is missing; the admin
// view is JSON that gives the payload back exactly.
func FuzzLetterHeaders(f *testing.F) {
	h := nats.Header{}
	h.Set(HeaderOriginalSubject, "orders.o-1.created")
	h.Set(HeaderOriginalStream, "ORDERS")
	h.Set(HeaderOriginalSequence, "42")
	h.Set(HeaderConsumer, "inventory-orders")
	h.Set(HeaderDeliveries, "5")
	h.Set(HeaderError, "parse orders.o-1.created: invalid event")
	h.Set(HeaderTime, "2026-01-02T03:04:05.123456789Z")
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.Set("Nats-Msg-Id", "x")
	f.Add(encodeHeaders(h), "dlq.inventory-orders.ORDERS.42", []byte(`{"id":"e-1"}`))
	f.Add([]byte("NATS/1.0\r\nDlq-Original-Sequence: 18446744073709551616\r\nDlq-Time: yesterday\r\n\r\n"), "dlq.c.S.7", []byte("\x00\xff"))
	f.Add([]byte("NATS/1.0\r\nDlq-Resolution: discarded\r\nDlq-Entry-Sequence: 3\r\n\r\n"), "dlq.c.S", []byte(nil))
	f.Add([]byte("NATS/1.0 503\r\n\r\n"), "", []byte("null"))
	f.Fuzz(func(t *testing.T, rawHeader []byte, subject string, data []byte) {
		hdr, err := nats.DecodeHeadersMsg(rawHeader)
		if err != nil {
			return // NATS would not deliver it
		}
		stored := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
		m := &jetstream.RawStreamMsg{Subject: subject, Sequence: 9, Header: hdr, Data: data, Time: stored}
		e := Decode(m)
		for k := range e.Header {
			if isLetterHeader(k) || isControlHeader(k) {
				t.Fatalf("original headers shown include %s", k)
			}
		}
		parts := strings.Split(subject, ".")
		if s, err := strconv.ParseUint(hdr.Get(HeaderOriginalSequence), 10, 64); err == nil && s != 0 {
			if e.OriginalSequence != s {
				t.Fatalf("original sequence %d, header says %d", e.OriginalSequence, s)
			}
		} else if len(parts) == 4 {
			if s, err := strconv.ParseUint(parts[3], 10, 64); err == nil && e.OriginalSequence != s {
				t.Fatalf("original sequence %d, subject %s says %d", e.OriginalSequence, subject, s)
			}
		}
		if hdr.Get(HeaderConsumer) == "" && len(parts) == 4 && e.Consumer != parts[1] {
			t.Fatalf("consumer %q, subject %s says %q", e.Consumer, subject, parts[1])
		}
		if e.Time.IsZero() {
			t.Fatalf("letter with headers %q has no time", rawHeader)
		}
		raw, err := json.Marshal(View(e, true))
		if err != nil {
			t.Fatalf("admin view of letter with headers %q: %v", rawHeader, err)
		}
		var v view.Letter
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("admin view %s is not JSON: %v", raw, err)
		}
		got := []byte(v.Data)
		if v.DataBase64 != "" {
			if got, err = base64.StdEncoding.DecodeString(v.DataBase64); err != nil {
				t.Fatal(err)
			}
		}
		if len(data) > 0 && !json.Valid(data) && string(got) != string(data) {
			t.Fatalf("payload %q shown as %q", data, got)
		}
		if json.Valid(data) && !json.Valid(got) {
			t.Fatalf("JSON payload %q shown as %q", data, got)
		}
	})
}

// encodeHeaders writes h as NATS puts headers on the wire.
func encodeHeaders(h nats.Header) []byte {
	var b strings.Builder
	b.WriteString("NATS/1.0\r\n")
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}
