// Package shopctl is the operator's command line for eventshop: `shopctl
// dlq list|show|replay|discard` manages dead letters through a service's
// admin API (GET/POST/DELETE /admin/dlq, behind ADMIN_TOKEN). Each service
// manages the dead letters of the messages of the stream it owns, whichever
// consumer gave up on them: order-service (:8080) those of ORDERS events,
// inventory-service (:8081) INVENTORY, payment-service (:8082) PAYMENTS,
// notification-service (:8083) NOTIFICATIONS.
package shopctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/eventshop/shared/api"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitFail  = 1 // the request failed, or a bulk action left letters as they were
	ExitUsage = 2
)

// Usage is the command's help text.
const Usage = `usage: shopctl [flags] dlq <command>

  dlq list [--consumer C] [--subject S]      list dead letters (S may use * and >)
  dlq show SEQ                               one letter: reason, headers, payload
  dlq replay SEQ                             re-publish it to its original subject
  dlq replay --consumer C [--subject S]      replay those selected
  dlq replay --all                           replay every letter of the service
  dlq discard SEQ                            drop it (the service logs what it was)
  dlq discard --consumer C [--subject S] | --all

flags (anywhere on the line):
  --url URL      service base URL (default http://127.0.0.1:8080, the order service:
                 letters of ORDERS events; :8081 INVENTORY, :8082 PAYMENTS, :8083 NOTIFICATIONS)
  --token TOKEN  admin token (default $ADMIN_TOKEN)
  --json         print the API's JSON instead of a table
`

// Run runs shopctl with args (without the program name) and returns the
// exit code; getenv supplies ADMIN_TOKEN.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{out: stdout, http: &http.Client{Timeout: 30 * time.Second}}
	fs := flag.NewFlagSet("shopctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.baseURL, "url", "http://127.0.0.1:8080", "")
	fs.StringVar(&c.token, "token", getenv("ADMIN_TOKEN"), "")
	fs.BoolVar(&c.json, "json", false, "")
	fs.StringVar(&c.consumer, "consumer", "", "")
	fs.StringVar(&c.subject, "subject", "", "")
	fs.BoolVar(&c.all, "all", false, "")
	pos, err := parse(fs, args)
	if err != nil || len(pos) < 2 || pos[0] != "dlq" {
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "shopctl:", err)
		}
		fmt.Fprint(stderr, Usage)
		return ExitUsage
	}
	if err := c.dlq(ctx, pos[1], pos[2:]); err != nil {
		fmt.Fprintln(stderr, "shopctl:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(stderr, Usage)
			return ExitUsage
		}
		return ExitFail
	}
	return ExitOK
}

// parse parses flags wherever they are and returns the other arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

var errUsage = errors.New("usage")

type cli struct {
	out      io.Writer
	http     *http.Client
	baseURL  string
	token    string
	json     bool
	consumer string
	subject  string
	all      bool
}

func (c *cli) dlq(ctx context.Context, cmd string, args []string) error {
	switch cmd {
	case "list":
		if len(args) != 0 || c.all {
			return fmt.Errorf("list takes --consumer and --subject only: %w", errUsage)
		}
		return c.list(ctx)
	case "show":
		seq, err := oneSeq(args)
		if err != nil {
			return err
		}
		return c.show(ctx, seq)
	case "replay", "discard":
		if len(args) == 0 {
			return c.bulk(ctx, cmd)
		}
		seq, err := oneSeq(args)
		if err != nil {
			return err
		}
		if c.all || c.consumer != "" || c.subject != "" {
			return fmt.Errorf("give a sequence or a filter, not both: %w", errUsage)
		}
		return c.one(ctx, cmd, seq)
	}
	return fmt.Errorf("unknown dlq command %q: %w", cmd, errUsage)
}

func oneSeq(args []string) (uint64, error) {
	if len(args) != 1 {
		return 0, fmt.Errorf("want one dead-letter sequence: %w", errUsage)
	}
	seq, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil || seq == 0 {
		return 0, fmt.Errorf("dead-letter sequence %q: %w", args[0], errUsage)
	}
	return seq, nil
}

func (c *cli) filter(bulk bool) url.Values {
	q := url.Values{}
	if c.consumer != "" {
		q.Set("consumer", c.consumer)
	}
	if c.subject != "" {
		q.Set("subject", c.subject)
	}
	if bulk && c.all {
		q.Set("all", "true")
	}
	return q
}

func (c *cli) list(ctx context.Context) error {
	var resp api.DeadLetterList
	raw, err := c.do(ctx, http.MethodGet, "/admin/dlq", c.filter(false), &resp)
	if err != nil || c.json {
		return c.printJSON(raw, err)
	}
	if resp.Count == 0 {
		fmt.Fprintf(c.out, "no dead letters of %s events\n", resp.Stream)
		return nil
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tCONSUMER\tORIGINAL SUBJECT\tSTREAM SEQ\tDELIVERIES\tDEAD-LETTERED\tERROR")
	for _, e := range resp.DeadLetters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\n", e.Sequence, e.Consumer, orMissing(e), e.OriginalSequence,
			e.Deliveries, e.DeadLetteredAt.UTC().Format(time.RFC3339), clip(e.Error, 80))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%d dead letter(s) of %s events\n", resp.Count, resp.Stream)
	return nil
}

func (c *cli) show(ctx context.Context, seq uint64) error {
	var e api.DeadLetter
	raw, err := c.do(ctx, http.MethodGet, "/admin/dlq/"+strconv.FormatUint(seq, 10), nil, &e)
	if err != nil || c.json {
		return c.printJSON(raw, err)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	for _, kv := range [][2]string{
		{"sequence", strconv.FormatUint(e.Sequence, 10)},
		{"consumer", e.Consumer},
		{"original", fmt.Sprintf("%s #%d  %s", e.OriginalStream, e.OriginalSequence, orMissing(e))},
		{"deliveries", strconv.FormatUint(e.Deliveries, 10)},
		{"dead-lettered", e.DeadLetteredAt.UTC().Format(time.RFC3339Nano)},
		{"error", e.Error},
		{"order id", e.OrderID},
		{"trace id", e.TraceID},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	for k, vs := range e.Headers {
		fmt.Fprintf(tw, "header %s:\t%s\n", k, strings.Join(vs, ", "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case len(e.Data) > 0:
		var pretty bytes.Buffer
		if json.Indent(&pretty, e.Data, "", "  ") != nil {
			pretty.Write(e.Data)
		}
		fmt.Fprintf(c.out, "payload:\n%s\n", pretty.String())
	case e.DataBase64 != "":
		fmt.Fprintf(c.out, "payload (base64, not JSON):\n%s\n", e.DataBase64)
	}
	return nil
}

func (c *cli) one(ctx context.Context, cmd string, seq uint64) error {
	path := "/admin/dlq/" + strconv.FormatUint(seq, 10)
	if cmd == "replay" {
		var r api.DeadLetterReplay
		raw, err := c.do(ctx, http.MethodPost, path+"/replay", nil, &r)
		if err != nil || c.json {
			return c.printJSON(raw, err)
		}
		fmt.Fprintln(c.out, replayLine(r))
		return nil
	}
	var e api.DeadLetter
	raw, err := c.do(ctx, http.MethodDelete, path, nil, &e)
	if err != nil || c.json {
		return c.printJSON(raw, err)
	}
	fmt.Fprintf(c.out, "discarded dead letter %d (%s gave up on %s)\n", e.Sequence, e.Consumer, orMissing(e))
	return nil
}

func (c *cli) bulk(ctx context.Context, cmd string) error {
	if !c.all && c.consumer == "" && c.subject == "" {
		return fmt.Errorf("%s needs a sequence, --consumer/--subject, or --all: %w", cmd, errUsage)
	}
	if c.all && (c.consumer != "" || c.subject != "") {
		return fmt.Errorf("--all selects every letter: drop --consumer/--subject: %w", errUsage)
	}
	method, path := http.MethodPost, "/admin/dlq/replay"
	if cmd == "discard" {
		method, path = http.MethodDelete, "/admin/dlq"
	}
	var b api.DeadLetterBulk
	raw, err := c.do(ctx, method, path, c.filter(true), &b)
	if err != nil {
		return c.printJSON(raw, err)
	}
	if c.json {
		if err := c.printJSON(raw, nil); err != nil {
			return err
		}
	} else {
		for _, r := range b.Replayed {
			fmt.Fprintln(c.out, replayLine(r))
		}
		for _, e := range b.Discarded {
			fmt.Fprintf(c.out, "discarded dead letter %d (%s gave up on %s)\n", e.Sequence, e.Consumer, orMissing(e))
		}
		for _, f := range b.Failed {
			fmt.Fprintf(c.out, "FAILED dead letter %d: %s\n", f.Sequence, f.Error)
		}
		fmt.Fprintf(c.out, "%s: %d done, %d failed\n", cmd, len(b.Replayed)+len(b.Discarded), len(b.Failed))
	}
	if len(b.Failed) > 0 {
		return fmt.Errorf("%s: %d dead letter(s) left as they were", cmd, len(b.Failed))
	}
	return nil
}

func replayLine(r api.DeadLetterReplay) string {
	if r.Duplicate {
		return fmt.Sprintf("replayed dead letter %d (%s) to %s: the copy was already there (stream seq %d), nothing new published",
			r.Sequence, r.Consumer, r.OriginalSubject, r.ReplaySequence)
	}
	return fmt.Sprintf("replayed dead letter %d (%s) to %s as stream seq %d", r.Sequence, r.Consumer, r.OriginalSubject, r.ReplaySequence)
}

// do sends the request and decodes a 2xx JSON answer into out; it returns
// the raw body too (for --json).
func (c *cli) do(ctx context.Context, method, path string, q url.Values, out any) ([]byte, error) {
	u := strings.TrimRight(c.baseURL, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var p api.Problem
		if json.Unmarshal(raw, &p) == nil && p.Type != "" {
			return raw, fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, strings.TrimPrefix(p.Type, api.ProblemType("")), p.Detail)
		}
		return raw, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, clip(string(raw), 200))
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return raw, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return raw, nil
}

// printJSON prints raw indented; with err it returns err (after printing
// the problem body, if any and --json asked for it).
func (c *cli) printJSON(raw []byte, err error) error {
	if err != nil && (!c.json || len(raw) == 0) {
		return err
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, raw, "", "  ") != nil {
		pretty.Write(raw)
	}
	fmt.Fprintln(c.out, pretty.String())
	return err
}

func orMissing(e api.DeadLetter) string {
	if e.OriginalMissing || e.OriginalSubject == "" {
		return "(original lost)"
	}
	return e.OriginalSubject
}

func clip(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
