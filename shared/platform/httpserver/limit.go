package httpserver

import (
	"fmt"
	"net"
	"net/http"
	"sync"

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

// limitConns returns ln accepting at most n open connections: Accept
// waits for one to close first, so the connections past n queue in the
// kernel (the listen backlog), costing the process nothing. Shedding a
// request (InFlightLimit) needs it to be read, and so its connection's
// goroutine and buffers; this bounds how many of those exist at once.
func limitConns(ln net.Listener, n int) net.Listener {
	return &connLimit{Listener: ln, slots: make(chan struct{}, n)}
}

type connLimit struct {
	net.Listener
	slots chan struct{}
}

func (l *connLimit) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
