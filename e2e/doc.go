// Package e2e holds the end-to-end tests: they build the real service
// binaries, run each as a separate OS process against a real nats-server,
// and drive the system only through its public HTTP APIs (reading the
// streams directly only to count events).
package e2e
