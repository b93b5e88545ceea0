package service_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/natstest"
)

// TestDeadLettersOfTheAuditConsumers: a poison event is dead-lettered once
// by the audit consumer (the MSG_TERMINATED advisory that follows adds
// nothing); its letter is managed by the stream's owner, so the audit
// service's own admin API, behind ADMIN_TOKEN, lists nothing.
func TestDeadLettersOfTheAuditConsumers(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	const token = "audit-admin"
	in := w.start(t, map[string]string{"ADMIN_TOKEN": token})
	get := func(path, tok string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, in.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ack, err := w.js.Publish(context.Background(), "payments.o-x.failed", []byte(`not json`))
	if err != nil {
		t.Fatal(err)
	}
	natstest.DeadLetter(t, w.js, "audit-payments", events.StreamPayments, ack.Sequence)
	natstest.Eventually(t, "terminated advisory seen", func() bool {
		_, body := get("/metrics", "")
		return strings.Contains(body, `eventshop_dead_letter_advisories_total{kind="terminated",outcome="already",service="audit-service"} 1`) &&
			strings.Contains(body, `eventshop_dead_letters_total{consumer="audit-payments",service="audit-service"} 1`)
	})
	if code, body := get("/admin/dlq", ""); code != http.StatusUnauthorized {
		t.Fatalf("without token = %d %s, want 401", code, body)
	}
	if code, body := get("/admin/dlq", token); code != http.StatusOK || !strings.Contains(body, `"count":0`) {
		t.Fatalf("with token = %d %s, want an empty list (AUDIT has no consumers)", code, body)
	}
}
