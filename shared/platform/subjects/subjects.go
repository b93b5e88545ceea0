// Package subjects matches NATS subjects against subject filters, as the
// server does, for code that selects messages by subject itself (the
// dead-letter admin's filters, the chaos checker's durables), and names
// the subject filter of an event type (Template, for span names).
package subjects

import "strings"

// Matches reports whether subject matches filter, where * matches one
// token and a final > one or more.
func Matches(filter, subject string) bool {
	ft, st := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, f := range ft {
		if f == ">" {
			return i == len(ft)-1 && len(st) > i
		}
		if i >= len(st) || (f != "*" && f != st[i]) {
			return false
		}
	}
	return len(ft) == len(st)
}

// OrderID returns the order id token of a domain subject (the second, by
// convention: orders.<id>.created), or "" if it has none.
func OrderID(subject string) string {
	_, rest, ok := strings.Cut(subject, ".")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, ".")
	if !ok {
		return ""
	}
	return id
}

// Template replaces the order id token (the second, by convention) with
// *: orders.<id>.created becomes orders.*.created, the subject filter of
// the event type.
func Template(subject string) string {
	first, rest, ok := strings.Cut(subject, ".")
	if !ok {
		return subject
	}
	_, verb, ok := strings.Cut(rest, ".")
	if !ok {
		return subject
	}
	return first + ".*." + verb
}
