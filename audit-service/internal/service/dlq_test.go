package service_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/kit/kittest"
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
		status, _, body := in.Get(path, kittest.Bearer(tok)...)
		return status, string(body)
	}
	ack, err := w.JS.Publish(context.Background(), "payments.o-x.failed", []byte(`not json`))
	if err != nil {
		t.Fatal(err)
	}
	natstest.DeadLetter(t, w.JS, "audit-payments", events.StreamPayments, ack.Sequence)
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

// TestEventWithAnInvalidPayloadIsNotAudited: the envelope is fine, the
// payload breaks its contract (an amount that is not a number): the audit
// holds only events the system could have acted on, so it dead-letters it.
func TestEventWithAnInvalidPayloadIsNotAudited(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t)
	raw := `{"specversion":"1.0","id":"e-bad-1","source":"payment-service","type":"shop.payment.failed","subject":"o-y",` +
		`"time":"2026-11-23T10:00:00Z","datacontenttype":"application/json",` +
		`"dataschema":"https://schemas.eventshop.dev/events/payment.failed/v1.json",` +
		`"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",` +
		`"data":{"order_id":"o-y","reason":"card_declined","amount_cents":"a lot","currency":"USD"}}`
	ack, err := w.JS.Publish(context.Background(), "payments.o-y.failed", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	letter := natstest.DeadLetter(t, w.JS, "audit-payments", events.StreamPayments, ack.Sequence)
	if reason := letter.Header.Get("Dlq-Error"); !strings.Contains(reason, "amount_cents") {
		t.Fatalf("Dlq-Error = %q, want it to name amount_cents", reason)
	}
	s, err := w.JS.Stream(context.Background(), events.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Fatalf("AUDIT holds %d messages, want none: the invalid event is not audited", info.State.Msgs)
	}
}
