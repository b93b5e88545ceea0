package httpserver

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Label values for what a client chose freely. Every label of a request
// metric comes from a small known set: each new value is a new series the
// process keeps for good, and a client that invents methods (20,000 made-up
// ones added 58 MB to a service) or sends a 200 KB one would otherwise
// grow the heap without bound.
const (
	otherMethod    = "OTHER"     // a method not in knownMethods
	unmatchedRoute = "unmatched" // a path no route matched
)

// knownMethods are the methods of RFC 9110 and PATCH (RFC 5789); any other
// is counted as otherMethod.
var knownMethods = map[string]string{
	http.MethodGet: http.MethodGet, http.MethodHead: http.MethodHead, http.MethodPost: http.MethodPost,
	http.MethodPut: http.MethodPut, http.MethodPatch: http.MethodPatch, http.MethodDelete: http.MethodDelete,
	http.MethodConnect: http.MethodConnect, http.MethodOptions: http.MethodOptions, http.MethodTrace: http.MethodTrace,
}

// methodLabel bounds the method label to knownMethods and otherMethod.
func methodLabel(m string) string {
	if known, ok := knownMethods[m]; ok {
		return known
	}
	return otherMethod
}

// statusLabel bounds the status label: net/http refuses codes outside
// 100-999, and the handlers write a handful of them.
func statusLabel(code int) string {
	if code < 100 || code > 999 {
		return "other"
	}
	return strconv.Itoa(code)
}

type requestMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRequestMetrics(reg prometheus.Registerer) *requestMetrics {
	f := promauto.With(reg)
	return &requestMetrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "eventshop_http_requests_total",
			Help: "HTTP requests by route template, method (unknown methods as OTHER) and status.",
		}, []string{"route", "method", "status"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventshop_http_request_seconds",
			Help:    "HTTP request latency by route template and method (unknown methods as OTHER).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
	}
}

func (m *requestMetrics) middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath() // the route's template (/orders/:id), never the raw path
		if route == "" {
			route = unmatchedRoute
		}
		method := methodLabel(c.Request.Method)
		m.requests.WithLabelValues(route, method, statusLabel(c.Writer.Status())).Inc()
		m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	}
}
