// Package problem holds RFC 9457 problem details, the one error body every
// service's HTTP API answers with.
package problem

import "net/http"

// ContentType is the media type of a problem details body.
const ContentType = "application/problem+json"

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Extension members.
	Errors []string `json:"errors,omitempty"`
}

// New returns a problem of the given status whose type is a stable URN made
// from slug, for example "urn:eventshop:problem:out-of-stock".
func New(status int, slug, detail string) Problem {
	return Problem{
		Type:   "urn:eventshop:problem:" + slug,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
	}
}

// Internal is the problem for an unexpected failure; it reveals nothing.
func Internal() Problem {
	return New(http.StatusInternalServerError, "internal", "an unexpected error occurred; it has been logged")
}
