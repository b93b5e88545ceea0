package httpserver

import (
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/eventshop/shared/platform/problem"
)

// InFlightLimit sheds load: at most n requests through it at once; one more
// is answered at once with 503 problem+json and Retry-After, instead of
// queueing until every waiting request has grown the heap and outlived its
// client. n <= 0 means no limit.
func InFlightLimit(n int) gin.HandlerFunc {
	if n <= 0 {
		return func(c *gin.Context) { c.Next() }
	}
	slots := make(chan struct{}, n)
	return func(c *gin.Context) {
		select {
		case slots <- struct{}{}:
		default:
			c.Header("Retry-After", "1")
			Write(c, problem.New(http.StatusServiceUnavailable, "overloaded",
				fmt.Sprintf("%d requests are already in progress; retry shortly with the same Idempotency-Key", n)))
			c.Abort()
			return
		}
		defer func() { <-slots }()
		c.Next()
	}
}
