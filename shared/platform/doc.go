// Package platform is the root of the shared runtime pieces every service
// uses: the kit that builds a service from its declaration (and kittest,
// its component-test harness), configuration, NATS connections, the
// consumer runner, typed KV repositories (kvstore), the HTTP server and
// its health probe, the lifecycle, logging, metrics and tracing. Nothing
// under platform imports a contract or a service.
package platform
