// Package httpapi is the payment service's HTTP API: payment look-up by
// order and the circuit breaker's status, and the one mapping of the
// service's errors to RFC 9457 problems.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/eventshop/payment-service/internal/breaker"
	"github.com/eventshop/payment-service/internal/payment"
	"github.com/eventshop/shared/api"
	"github.com/eventshop/shared/api/openapi"
	"github.com/eventshop/shared/events"
	"github.com/eventshop/shared/platform/problem"
)

// Payments reads an order's payment as it stands (app.App).
type Payments interface {
	Get(ctx context.Context, orderID string) (payment.Record, error)
}

// BreakerStatus reports the gateway circuit breaker's state.
type BreakerStatus interface {
	Snapshot() breaker.Snapshot
}

// BreakerView is the body of GET /breaker.
type BreakerView = api.Breaker

// ViewOf renders a breaker snapshot.
func ViewOf(s breaker.Snapshot) BreakerView {
	return BreakerView{
		State:               s.State.String(),
		ConsecutiveFailures: s.ConsecutiveFailures,
		ProbesInFlight:      s.ProbesInFlight,
		RetryAfterMS:        s.RetryAfter.Milliseconds(),
	}
}

// Register mounts the routes on e, with their OpenAPI document at
// /openapi.json.
func Register(e *gin.Engine, payments Payments, br BreakerStatus) {
	h := handlers{payments: payments, breaker: br}
	e.GET("/payments/:order_id", h.getPayment)
	e.GET("/breaker", h.getBreaker)
	e.GET("/openapi.json", gin.WrapH(openapi.Handler(openapi.Payment)))
}

type handlers struct {
	payments Payments
	breaker  BreakerStatus
}

func (h handlers) getPayment(c *gin.Context) {
	orderID := c.Param("order_id")
	if !events.ValidID(orderID) {
		c.Error(fmt.Errorf("order id %q: %w", orderID, payment.ErrInvalidOrderID))
		return
	}
	c.Set("order_id", orderID)
	rec, err := h.payments.Get(c.Request.Context(), orderID)
	if err != nil {
		c.Error(err)
		return
	}
	// The charge's idempotency key is a secret: whoever knows it can make
	// a charge under it before we do.
	rec.ChargeKey = ""
	c.JSON(http.StatusOK, rec)
}

func (h handlers) getBreaker(c *gin.Context) {
	c.JSON(http.StatusOK, ViewOf(h.breaker.Snapshot()))
}

// MapError turns the service's errors into problems.
func MapError(err error) problem.Problem {
	switch {
	case errors.Is(err, payment.ErrNotFound):
		return problem.New(http.StatusNotFound, "payment-not-found", "no payment is recorded for this order (yet)")
	case errors.Is(err, payment.ErrInvalidOrderID):
		return problem.New(http.StatusBadRequest, "invalid-order-id", "order ids are 1 to 64 letters, digits, '-' or '_'")
	default:
		return problem.Internal()
	}
}
