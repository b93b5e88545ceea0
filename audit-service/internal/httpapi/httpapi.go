// Package httpapi is the audit service's HTTP API: an order's audit
// timeline and the verification of the whole chain. It also holds the
// service's one mapping from errors to RFC 9457 problems.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/eventshop/audit-service/internal/app"
	"github.com/eventshop/audit-service/internal/chain"
	"github.com/eventshop/shared/api"
	"github.com/eventshop/shared/api/openapi"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/problem"
)

// TimelineEntry is one event of an order's audit timeline.
type TimelineEntry = api.TimelineEntry

// Timeline is the body of GET /audit/orders/{id}.
type Timeline = api.Timeline

// Register mounts the API on e, with its OpenAPI document at /openapi.json.
func Register(e *gin.Engine, a *app.App) {
	h := &handlers{app: a}
	e.GET("/audit/orders/:id", h.timeline)
	e.GET("/audit/verify", h.verify)
	e.GET("/openapi.json", gin.WrapH(openapi.Handler(openapi.Audit)))
}

type handlers struct {
	app *app.App
}

func (h *handlers) timeline(c *gin.Context) {
	orderID := c.Param("id")
	if !events.ValidID(orderID) {
		c.Error(fmt.Errorf("order id %q: %w", orderID, events.ErrInvalidID))
		return
	}
	c.Set("order_id", orderID)
	entries, err := h.app.Timeline(c.Request.Context(), orderID)
	if err != nil {
		c.Error(err)
		return
	}
	out := Timeline{OrderID: orderID, Entries: make([]TimelineEntry, 0, len(entries))}
	for _, e := range entries {
		// The event was valid when audited; only its time and data are
		// lifted out of it here.
		var ev struct {
			Time *time.Time      `json:"time"`
			Data json.RawMessage `json:"data"`
		}
		_ = json.Unmarshal(e.Event, &ev) // a tampered event shows without time or data
		out.Entries = append(out.Entries, TimelineEntry{
			Index: e.Index, Type: e.Type, Source: e.Source, EventID: e.EventID, TraceID: e.TraceID,
			Time: ev.Time, RecordedAt: e.RecordedAt, Data: ev.Data,
		})
	}
	c.JSON(http.StatusOK, out)
}

func (h *handlers) verify(c *gin.Context) {
	res, err := h.app.Verify(c.Request.Context())
	if err != nil {
		c.Error(fmt.Errorf("verify audit chain: %w", err))
		return
	}
	c.JSON(http.StatusOK, res)
}

// MapError is the service's one mapping of errors to problems.
func MapError(err error) problem.Problem {
	switch {
	case errors.Is(err, events.ErrInvalidID):
		return problem.New(http.StatusBadRequest, "invalid-id", err.Error())
	case errors.Is(err, chain.ErrNotFound):
		return problem.New(http.StatusNotFound, "not-found", err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return problem.New(http.StatusServiceUnavailable, "unavailable", "the audit stream did not answer in time")
	default:
		return problem.Internal()
	}
}
