package httpserver

import (
	"net/http/pprof"

	"github.com/gin-gonic/gin"
)

// mountProfiler serves Go's profiler behind the bearer token: CPU profiles
// (/debug/pprof/profile?seconds=20; the server's write timeout is 30 s),
// heap, goroutines, mutex and block profiles, execution traces.
func mountProfiler(e *gin.Engine, token string) {
	g := e.Group("/debug/pprof", BearerAuth(token))
	g.GET("/", gin.WrapF(pprof.Index))
	g.GET("/cmdline", gin.WrapF(pprof.Cmdline))
	g.GET("/profile", gin.WrapF(pprof.Profile))
	g.GET("/symbol", gin.WrapF(pprof.Symbol))
	g.POST("/symbol", gin.WrapF(pprof.Symbol))
	g.GET("/trace", gin.WrapF(pprof.Trace))
	g.GET("/:name", func(c *gin.Context) { pprof.Handler(c.Param("name")).ServeHTTP(c.Writer, c.Request) })
}
