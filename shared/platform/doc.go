// Package platform is the root of the shared runtime pieces every service
// uses: configuration, NATS connections, the consumer runner, typed KV
// repositories (kvstore), the HTTP server and its health probe, logging,
// metrics and tracing. Nothing under platform imports a contract or a
// service.
package platform
