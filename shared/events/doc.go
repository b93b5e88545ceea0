// Package events holds the contracts every eventshop service shares: the
// CloudEvents envelope, the event types and their payloads, the subjects and
// streams they travel on, and the versioned JSON schemas that producers and
// consumers validate against.
package events
