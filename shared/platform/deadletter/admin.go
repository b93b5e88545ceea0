package deadletter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/deadletter/view"
	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/problem"
)

// Request errors of the admin endpoints.
var (
	ErrBadSequence    = errors.New("the dead-letter sequence must be a positive integer")
	ErrBadFilter      = errors.New("invalid filter")
	ErrFilterRequired = errors.New("give consumer and/or subject, or all=true to act on every dead letter")
)

// requestTimeout bounds the NATS work of one admin request (below the
// HTTP server's 30s write timeout).
const requestTimeout = 25 * time.Second

// Admin serves the dead-letter endpoints of a service. Mount it behind
// the admin token:
//
//	deadletter.NewAdmin(letters, log).Register(engine.Group("/admin", httpserver.BearerAuth(token)))
//
// Its errors are problem details it maps itself (mapError): the routes and
// their errors belong to this package, not to the service's domain.
type Admin struct {
	letters *Letters
	log     *zap.Logger
}

// NewAdmin returns the endpoints over letters.
func NewAdmin(letters *Letters, log *zap.Logger) *Admin { return &Admin{letters: letters, log: log} }

// Register mounts, under r:
//
//	GET    /dlq?consumer=&subject=       list (no payloads)
//	GET    /dlq/{seq}                    one letter with headers and payload
//	POST   /dlq/{seq}/replay             replay one
//	POST   /dlq/replay?consumer=&subject=|all=true   replay those selected
//	DELETE /dlq/{seq}                    discard one
//	DELETE /dlq?consumer=&subject=|all=true          discard those selected
func (a *Admin) Register(r gin.IRouter) {
	g := r.Group("/dlq")
	g.GET("", a.list)
	g.GET("/:seq", a.show)
	g.POST("/:seq/replay", a.replayOne)
	g.POST("/replay", a.replayMatching)
	g.DELETE("/:seq", a.discardOne)
	g.DELETE("", a.discardMatching)
}

// View returns e as the admin API shows it; full adds headers and payload.
func View(e Letter, full bool) view.Letter {
	v := view.Letter{
		Sequence: e.DLQSequence, Subject: e.DLQSubject, Consumer: e.Consumer,
		OriginalStream: e.OriginalStream, OriginalSequence: e.OriginalSequence, OriginalSubject: e.OriginalSubject,
		Deliveries: e.Deliveries, Error: e.Reason, DeadLetteredAt: e.Time,
		OrderID: e.OrderID(), TraceID: e.TraceID(), OriginalMissing: e.Missing,
	}
	if full {
		v.Headers = e.Header
		if json.Valid(e.Data) {
			v.Data = json.RawMessage(e.Data)
		} else if len(e.Data) > 0 {
			v.DataBase64 = base64.StdEncoding.EncodeToString(e.Data)
		}
	}
	return v
}

func replayView(r Replayed) view.Replay {
	return view.Replay{Sequence: r.Letter.DLQSequence, Consumer: r.Letter.Consumer, OriginalSubject: r.Letter.OriginalSubject,
		ReplaySequence: r.ReplaySequence, Duplicate: r.Duplicate}
}

func (a *Admin) list(c *gin.Context) {
	f, err := filter(c, false)
	if err != nil {
		a.fail(c, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), requestTimeout)
	defer cancel()
	entries, err := a.letters.List(ctx, f)
	if err != nil {
		a.fail(c, err)
		return
	}
	views := make([]view.Letter, 0, len(entries))
	for _, e := range entries {
		views = append(views, View(e, false))
	}
	c.JSON(http.StatusOK, view.List{Stream: a.letters.Stream(), Count: len(views), DeadLetters: views})
}

func (a *Admin) show(c *gin.Context) {
	seq, err := sequence(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), requestTimeout)
	defer cancel()
	e, err := a.letters.Get(ctx, seq)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, View(e, true))
}

func (a *Admin) replayOne(c *gin.Context) {
	seq, err := sequence(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), requestTimeout)
	defer cancel()
	r, err := a.letters.Replay(ctx, seq)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, replayView(r))
}

func (a *Admin) replayMatching(c *gin.Context) {
	f, err := filter(c, true)
	if err != nil {
		a.fail(c, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), requestTimeout)
	defer cancel()
	b, err := a.letters.ReplayMatching(ctx, f)
	if err != nil {
		a.fail(c, err)
		return
	}
	v := view.Bulk{Replayed: []view.Replay{}, Failed: failures(b.Failed)}
	for _, r := range b.Replayed {
		v.Replayed = append(v.Replayed, replayView(r))
	}
	c.JSON(http.StatusOK, v)
}

func (a *Admin) discardOne(c *gin.Context) {
	seq, err := sequence(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), requestTimeout)
	defer cancel()
	e, err := a.letters.Discard(ctx, seq)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, View(e, false))
}

func (a *Admin) discardMatching(c *gin.Context) {
	f, err := filter(c, true)
	if err != nil {
		a.fail(c, err)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), requestTimeout)
	defer cancel()
	b, err := a.letters.DiscardMatching(ctx, f)
	if err != nil {
		a.fail(c, err)
		return
	}
	v := view.Bulk{Discarded: []view.Letter{}, Failed: failures(b.Failed)}
	for _, e := range b.Discarded {
		v.Discarded = append(v.Discarded, View(e, false))
	}
	c.JSON(http.StatusOK, v)
}

func failures(fs []Failure) []view.Failure {
	out := make([]view.Failure, 0, len(fs))
	for _, f := range fs {
		out = append(out, view.Failure{Sequence: f.Sequence, Error: f.Err.Error()})
	}
	return out
}

func sequence(c *gin.Context) (uint64, error) {
	seq, err := strconv.ParseUint(c.Param("seq"), 10, 64)
	if err != nil || seq == 0 {
		return 0, ErrBadSequence
	}
	return seq, nil
}

// filter reads consumer= and subject=; a bulk action on every letter
// must say so with all=true, so a forgotten parameter cannot replay or
// discard everything.
func filter(c *gin.Context, bulk bool) (Filter, error) {
	f := Filter{Consumer: c.Query("consumer"), Subject: c.Query("subject")}
	if f.Consumer != "" && (strings.ContainsAny(f.Consumer, ".*> \t") || len(f.Consumer) > 255) {
		return f, errors.Join(ErrBadFilter, errors.New("consumer must be a durable name"))
	}
	if f.Subject != "" && !validPattern(f.Subject) {
		return f, errors.Join(ErrBadFilter, errors.New("subject must be a subject, * and > wildcards allowed"))
	}
	if bulk && f.IsZero() && c.Query("all") != "true" {
		return f, ErrFilterRequired
	}
	return f, nil
}

func validPattern(p string) bool {
	toks := strings.Split(p, ".")
	for i, t := range toks {
		if t == "" || strings.ContainsAny(t, " \t\n\r\f") || (t == ">" && i != len(toks)-1) ||
			(strings.ContainsAny(t, "*>") && len(t) > 1) {
			return false
		}
	}
	return true
}

// fail is the one place the admin endpoints turn an error into a problem.
func (a *Admin) fail(c *gin.Context, err error) {
	p := mapError(err)
	if p.Status >= 500 {
		a.log.Error("dead-letter admin request failed", zap.String("path", c.Request.URL.Path), zap.Error(err))
	}
	httpserver.Write(c, p)
}

func mapError(err error) problem.Problem {
	switch {
	case errors.Is(err, ErrBadSequence):
		return problem.New(http.StatusBadRequest, "invalid-dead-letter-sequence", err.Error())
	case errors.Is(err, ErrBadFilter), errors.Is(err, ErrFilterRequired):
		return problem.New(http.StatusBadRequest, "invalid-dead-letter-filter", err.Error())
	case errors.Is(err, ErrNotFound):
		return problem.New(http.StatusNotFound, "dead-letter-not-found", err.Error())
	case errors.Is(err, ErrResolved):
		return problem.New(http.StatusConflict, "dead-letter-resolved", err.Error())
	case errors.Is(err, ErrOriginalMissing):
		return problem.New(http.StatusConflict, "dead-letter-original-missing", err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, jetstream.ErrNoStreamResponse):
		return problem.New(http.StatusServiceUnavailable, "nats-unavailable", "NATS did not answer; try again")
	}
	return problem.Internal()
}
