// Package httpapi is the notification service's HTTP API: look up the
// notifications of an order. It also holds the service's one mapping from
// errors to RFC 9457 problems.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/eventshop/notification-service/internal/notification"
	"github.com/eventshop/shared/api/openapi"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/problem"
)

// ErrBadRequest marks a request the API cannot serve as sent.
var ErrBadRequest = errors.New("bad request")

// Notifications lists an order's notifications (app.App).
type Notifications interface {
	List(ctx context.Context, orderID string) ([]notification.Notification, error)
}

// Response is the body of GET /notifications.
type Response struct {
	OrderID       string                      `json:"order_id"`
	Notifications []notification.Notification `json:"notifications"`
}

// Register mounts the API on e, with its OpenAPI document at /openapi.json.
func Register(e *gin.Engine, notifications Notifications) {
	h := &handlers{notifications: notifications}
	e.GET("/notifications", h.list)
	e.GET("/openapi.json", gin.WrapH(openapi.Handler(openapi.Notification)))
}

type handlers struct {
	notifications Notifications
}

func (h *handlers) list(c *gin.Context) {
	orderID, ok := c.GetQuery("order_id")
	if !ok || orderID == "" {
		c.Error(fmt.Errorf("query parameter order_id is required: %w", ErrBadRequest))
		return
	}
	if !events.ValidID(orderID) {
		c.Error(fmt.Errorf("order_id %q: %w", orderID, events.ErrInvalidID))
		return
	}
	c.Set("order_id", orderID)
	list, err := h.notifications.List(c.Request.Context(), orderID)
	if err != nil {
		c.Error(fmt.Errorf("list notifications of %s: %w", orderID, err))
		return
	}
	c.JSON(http.StatusOK, Response{OrderID: orderID, Notifications: list})
}

// MapError is the service's one mapping of errors to problems.
func MapError(err error) problem.Problem {
	switch {
	case errors.Is(err, ErrBadRequest):
		return problem.New(http.StatusBadRequest, "bad-request", err.Error())
	case errors.Is(err, events.ErrInvalidID):
		return problem.New(http.StatusBadRequest, "invalid-id", err.Error())
	case errors.Is(err, notification.ErrNotFound):
		return problem.New(http.StatusNotFound, "not-found", err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return problem.New(http.StatusServiceUnavailable, "unavailable", "the notification store did not answer in time")
	default:
		return problem.Internal()
	}
}
