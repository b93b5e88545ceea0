package gatewaysim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/problem"
)

// ServiceName names the simulator in logs and metrics.
const ServiceName = "payment-gateway"

const maxBody = 64 << 10

// NewServer returns the simulator's HTTP server listening on addr: the
// shared server (health, metrics, problem responses) with the charge, refund
// and admin routes mounted. Tests serve its Engine with httptest.
func NewServer(addr string, sim *Simulator, log *zap.Logger, reg *prometheus.Registry) (*httpserver.Server, error) {
	if sim == nil {
		return nil, fmt.Errorf("simulator: %w", ErrInvalidOption)
	}
	srv, err := httpserver.New(httpserver.Config{Addr: addr, Service: ServiceName}, log, reg, MapError)
	if err != nil {
		return nil, err
	}
	h := handlers{sim: sim}
	srv.Engine.POST("/charges", h.charge)
	srv.Engine.GET("/charges", h.charges)
	srv.Engine.POST("/refunds", h.refund)
	srv.Engine.GET("/admin/mode", h.getMode)
	srv.Engine.PUT("/admin/mode", h.putMode)
	return srv, nil
}

// MapError turns the simulator's errors into problems.
func MapError(err error) problem.Problem {
	switch {
	case errors.Is(err, ErrMissingIdempotencyKey):
		return problem.New(http.StatusBadRequest, "missing-idempotency-key", "charges and refunds require an Idempotency-Key header")
	case errors.Is(err, ErrInvalidCharge):
		return problem.New(http.StatusBadRequest, "invalid-charge", err.Error())
	case errors.Is(err, ErrInvalidRefund):
		return problem.New(http.StatusBadRequest, "invalid-refund", err.Error())
	case errors.Is(err, ErrChargeNotFound):
		return problem.New(http.StatusNotFound, "charge-not-found", err.Error())
	case errors.Is(err, ErrNotRefundable):
		return problem.New(http.StatusConflict, "charge-not-refundable", err.Error())
	case errors.Is(err, ErrInvalidMode):
		return problem.New(http.StatusBadRequest, "invalid-mode", err.Error())
	case errors.Is(err, ErrDown):
		return problem.New(http.StatusServiceUnavailable, "processor-unavailable", "the payment processor is down (simulated)")
	case errors.Is(err, ErrFlaky):
		return problem.New(http.StatusInternalServerError, "processor-error", "the payment processor failed (simulated)")
	default:
		return problem.Internal()
	}
}

type handlers struct{ sim *Simulator }

func (h handlers) charge(c *gin.Context) {
	key := c.GetHeader(HeaderIdempotencyKey)
	if key == "" {
		c.Error(ErrMissingIdempotencyKey)
		return
	}
	var req ChargeRequest
	if err := decodeStrict(c.Request.Body, &req); err != nil {
		c.Error(fmt.Errorf("%w: %w", ErrInvalidCharge, err))
		return
	}
	resp, err := h.sim.Charge(c.Request.Context(), key, req)
	if err != nil {
		c.Error(err)
		return
	}
	if resp.Replayed {
		c.Header(HeaderIdempotentReplayed, "true")
	}
	c.Data(resp.Status, "application/json", resp.Body)
}

func (h handlers) refund(c *gin.Context) {
	key := c.GetHeader(HeaderIdempotencyKey)
	if key == "" {
		c.Error(ErrMissingIdempotencyKey)
		return
	}
	var req RefundRequest
	if err := decodeStrict(c.Request.Body, &req); err != nil {
		c.Error(fmt.Errorf("%w: %w", ErrInvalidRefund, err))
		return
	}
	resp, err := h.sim.Refund(c.Request.Context(), key, req)
	if err != nil {
		c.Error(err)
		return
	}
	if resp.Replayed {
		c.Header(HeaderIdempotentReplayed, "true")
	}
	c.Data(resp.Status, "application/json", resp.Body)
}

func (h handlers) charges(c *gin.Context) {
	orderID := c.Query("order_id")
	if orderID == "" {
		c.Error(fmt.Errorf("%w: the order_id query parameter is required", ErrInvalidCharge))
		return
	}
	c.JSON(http.StatusOK, h.sim.Charges(orderID))
}

func (h handlers) getMode(c *gin.Context) { c.JSON(http.StatusOK, h.sim.Settings()) }

func (h handlers) putMode(c *gin.Context) {
	var set Settings
	if err := decodeStrict(c.Request.Body, &set); err != nil {
		c.Error(fmt.Errorf("%w: %w", ErrInvalidMode, err))
		return
	}
	if err := h.sim.SetSettings(set); err != nil {
		c.Error(err)
		return
	}
	c.JSON(http.StatusOK, h.sim.Settings())
}

// decodeStrict decodes one JSON object, refusing unknown fields, floats for
// integers and trailing data.
func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(r, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if dec.More() {
		return errors.New("body: trailing data after the JSON object")
	}
	return nil
}
