package gatewaysim

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/eventshop/shared/platform/httpserver"
	"github.com/eventshop/shared/platform/problem"
)

// ServiceName names the simulator in logs and metrics.
const ServiceName = "payment-gateway"

const maxBody = 64 << 10

// Credentials are what the simulator's callers must show, each as
// "Authorization: Bearer <secret>".
type Credentials struct {
	// APIKey is the payment service's key (GATEWAY_API_KEY): POST /charges
	// and POST /refunds. Required.
	APIKey string
	// AdminToken (ADMIN_TOKEN) guards the operator routes: GET /charges
	// (the listing the checkers read) and /admin/mode (the outage
	// switches). Empty refuses them all, as every service's admin routes.
	AdminToken string
}

// NewServer returns the simulator's HTTP server listening on addr: the
// shared server (health, metrics, problem responses) with the charge, refund
// and admin routes mounted behind creds. Tests serve its Engine with
// httptest.
func NewServer(addr string, sim *Simulator, creds Credentials, log *zap.Logger, reg *prometheus.Registry) (*httpserver.Server, error) {
	if sim == nil {
		return nil, fmt.Errorf("simulator: %w", ErrInvalidOption)
	}
	if creds.APIKey == "" {
		return nil, fmt.Errorf("api key is empty (anyone could charge and refund): %w", ErrInvalidOption)
	}
	srv, err := httpserver.New(httpserver.Config{Addr: addr, Service: ServiceName}, log, reg, MapError)
	if err != nil {
		return nil, err
	}
	h := handlers{sim: sim}
	client := apiKeyAuth(creds.APIKey)
	admin := httpserver.BearerAuth(creds.AdminToken)
	srv.Engine.POST("/charges", client, h.charge)
	srv.Engine.POST("/refunds", client, h.refund)
	srv.Engine.GET("/charges", admin, h.charges)
	srv.Engine.GET("/admin/mode", admin, h.getMode)
	srv.Engine.PUT("/admin/mode", admin, h.putMode)
	return srv, nil
}

// apiKeyAuth admits only "Authorization: Bearer <key>", compared in
// constant time.
func apiKeyAuth(key string) gin.HandlerFunc {
	return func(c *gin.Context) {
		got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(key)) != 1 {
			c.Header("WWW-Authenticate", `Bearer realm="payment-gateway"`)
			httpserver.Write(c, problem.New(http.StatusUnauthorized, "unauthorized",
				"charges and refunds need the payment service's API key: send Authorization: Bearer <GATEWAY_API_KEY>"))
			return
		}
		c.Next()
	}
}

// MapError turns the simulator's errors into problems.
func MapError(err error) problem.Problem {
	switch {
	case errors.Is(err, ErrKeyReused):
		return problem.New(http.StatusUnprocessableEntity, "idempotency-key-reused", err.Error())
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
