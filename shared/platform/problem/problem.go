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

// Type returns the stable URN of a problem type, for example
// "urn:eventshop:problem:out-of-stock" for "out-of-stock".
func Type(slug string) string { return "urn:eventshop:problem:" + slug }

// New returns a problem of the given status whose type is Type(slug).
func New(status int, slug, detail string) Problem {
	return Problem{
		Type:   Type(slug),
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
	}
}

// Internal is the problem for an unexpected failure; it reveals nothing.
func Internal() Problem {
	return New(http.StatusInternalServerError, "internal", "an unexpected error occurred; it has been logged")
}
