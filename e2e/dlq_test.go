package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventshop/shared/api"
	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/tools/shopctl"
)

// shopctlRun runs the operator CLI against a service with the admin token.
func shopctlRun(t *testing.T, service string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append([]string{"--url", sys.urls[service], "--token", adminToken}, args...)
	code := shopctl.Run(context.Background(), args, &out, &errOut, func(string) string { return "" })
	return code, out.String(), errOut.String()
}

// lettersOf lists, through the order service's admin API, the dead letters
// of ORDERS events on subject.
func lettersOf(t *testing.T, subject string) []api.DeadLetter {
	t.Helper()
	code, out, errOut := shopctlRun(t, "order-service", "dlq", "list", "--subject", subject, "--json")
	if code != 0 {
		t.Fatalf("shopctl dlq list = %d: %s", code, errOut)
	}
	var resp api.DeadLetterList
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("decode %q: %v", out, err)
	}
	return resp.DeadLetters
}

// testDeadLetterOperations: a poison event is dead-lettered once by each
// consumer of its subject; an operator lists and inspects the letters with
// shopctl through the admin API of the stream's owner, replays one (the
// copy, still poison, is dead-lettered again under its own sequence; a
// second replay is refused) and discards the rest of that consumer's.
// The audit service's letters are left alone: the audit check counts them.
func testDeadLetterOperations(t *testing.T) {
	js, err := jetstream.New(sys.adminConn(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	subject := "orders." + uniq("poison") + ".created"
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	msg := nats.NewMsg(subject)
	msg.Data = []byte(`{"specversion":"1.0","type":"shop.order.created"}`)
	msg.Header.Set("traceparent", tp)
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}

	// byConsumer indexes the letters of subject by consumer and original
	// sequence.
	byConsumer := func() map[string]map[uint64]api.DeadLetter {
		m := map[string]map[uint64]api.DeadLetter{}
		for _, l := range lettersOf(t, subject) {
			if m[l.Consumer] == nil {
				m[l.Consumer] = map[uint64]api.DeadLetter{}
			}
			m[l.Consumer][l.OriginalSequence] = l
		}
		return m
	}
	var letters map[string]map[uint64]api.DeadLetter
	eventually(t, 20*time.Second, "inventory and audit dead-letter the poison", func() bool {
		letters = byConsumer()
		_, inv := letters["inventory-orders"][ack.Sequence]
		_, aud := letters["audit-orders"][ack.Sequence]
		return inv && aud
	})
	for c, ls := range letters {
		for _, l := range ls {
			if l.OriginalSequence != ack.Sequence || l.Deliveries != 1 || !strings.Contains(l.Error, "invalid event") {
				t.Fatalf("letter of %s %+v, want the poison's, delivered once, with the reason", c, l)
			}
		}
	}
	inv := letters["inventory-orders"][ack.Sequence]
	code, out, errOut := shopctlRun(t, "order-service", "dlq", "list")
	if code != 0 || !strings.Contains(out, subject) || !strings.Contains(out, "inventory-orders") {
		t.Fatalf("shopctl dlq list = %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = shopctlRun(t, "order-service", "dlq", "show", strconv.FormatUint(inv.Sequence, 10), "--json")
	var shown api.DeadLetter
	if code != 0 || json.Unmarshal([]byte(out), &shown) != nil || shown.TraceID != "0af7651916cd43dd8448eb211c80319c" ||
		len(shown.Headers["traceparent"]) != 1 || shown.Headers["traceparent"][0] != tp {
		t.Fatalf("shopctl dlq show = %d %s %s; want the original traceparent", code, out, errOut)
	}

	// Replay: the copy goes back to the subject, and being poison still,
	// both consumers dead-letter it under the copy's sequence.
	code, out, errOut = shopctlRun(t, "order-service", "dlq", "replay", strconv.FormatUint(inv.Sequence, 10))
	if code != 0 || !strings.Contains(out, "replayed dead letter "+strconv.FormatUint(inv.Sequence, 10)) {
		t.Fatalf("shopctl dlq replay = %d\n%s%s", code, out, errOut)
	}
	eventually(t, 20*time.Second, "the replayed copy dead-lettered by both consumers", func() bool {
		letters = byConsumer()
		_, orig := letters["inventory-orders"][ack.Sequence]
		return !orig && len(letters["inventory-orders"]) == 1 && len(letters["audit-orders"]) == 2
	})
	if code, _, errOut := shopctlRun(t, "order-service", "dlq", "replay", strconv.FormatUint(inv.Sequence, 10)); code != shopctl.ExitFail ||
		!strings.Contains(errOut, "dead-letter-resolved") {
		t.Fatalf("second replay = %d %s, want refused as resolved", code, errOut)
	}

	code, out, errOut = shopctlRun(t, "order-service", "dlq", "discard", "--consumer", "inventory-orders", "--subject", subject)
	if code != 0 || !strings.Contains(out, "discard: 1 done, 0 failed") {
		t.Fatalf("shopctl dlq discard = %d\n%s%s", code, out, errOut)
	}
	letters = byConsumer()
	if len(letters["inventory-orders"]) != 0 || len(letters["audit-orders"]) != 2 {
		t.Fatalf("letters after the discard: %+v; want audit's two only", letters)
	}

	// Nothing was dead-lettered twice: each subject holds its one letter
	// or, once resolved, the tombstone that replaced it.
	dlq, err := js.Stream(ctx, deadletter.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dlq.Info(ctx, jetstream.WithSubjectFilter("dlq.*.ORDERS.>"))
	if err != nil {
		t.Fatal(err)
	}
	for subj, n := range info.State.Subjects {
		if n != 1 {
			t.Errorf("%s holds %d messages, want 1", subj, n)
		}
	}

	// The inventory service manages INVENTORY's letters, behind the token.
	var p api.Problem
	if code, hdr := call(t, http.MethodGet, sys.urls["inventory-service"]+"/admin/dlq", nil, nil, &p); code != http.StatusUnauthorized ||
		hdr.Get("Content-Type") != "application/problem+json" || p.Type != api.ProblemType("unauthorized") {
		t.Fatalf("inventory GET /admin/dlq without token = %d %+v, want 401 problem", code, p)
	}
	code, out, errOut = shopctlRun(t, "inventory-service", "dlq", "list")
	if code != 0 || strings.Contains(out, subject) {
		t.Fatalf("inventory's dead letters = %d\n%s%s; want none of ORDERS events", code, out, errOut)
	}
}
