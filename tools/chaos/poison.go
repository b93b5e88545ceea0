package chaos

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/eventshop/shared/platform/subjects"
)

// Injected is one poison message chaos published.
type Injected struct {
	Stream  string `json:"stream"`
	Seq     uint64 `json:"seq"`
	Subject string `json:"subject"`
	What    string `json:"what"` // which malformation
}

// Letter is one subject of the dead-letter stream, read back.
type Letter struct {
	Subject         string // dlq.<durable>.<stream>.<seq>
	Messages        uint64 // messages stored on the subject (1: the letter)
	OriginalSubject string
	Reason          string
	Resolved        string // the resolution of a tombstone, "" for a letter
}

// Durable is a durable consumer and the subjects it reads.
type Durable struct {
	Stream  string
	Name    string
	Filters []string // none: the whole stream
}

// reads reports whether d receives messages on subject.
func (d Durable) reads(subject string) bool {
	if len(d.Filters) == 0 {
		return true
	}
	return slices.ContainsFunc(d.Filters, func(f string) bool { return subjects.Matches(f, subject) })
}

// letterKey is the dead-letter subject of the letter durable writes for
// the message at seq of stream.
func letterKey(durable, stream string, seq uint64) string {
	return "dlq." + durable + "." + stream + "." + strconv.FormatUint(seq, 10)
}

// parseLetterSubject splits dlq.<durable>.<stream>.<seq>.
func parseLetterSubject(subject string) (durable, stream string, seq uint64, ok bool) {
	t := strings.Split(subject, ".")
	if len(t) != 4 || t[0] != "dlq" {
		return "", "", 0, false
	}
	n, err := strconv.ParseUint(t[3], 10, 64)
	if err != nil {
		return "", "", 0, false
	}
	return t[1], t[2], n, true
}

// ExpectedLetters returns the dead-letter subject of every letter the
// poison must produce: one per poison message and durable that reads it.
// A poison message no durable reads is returned in unread.
func ExpectedLetters(poison []Injected, durables []Durable) (want map[string]Injected, unread []Injected) {
	want = map[string]Injected{}
	for _, p := range poison {
		n := 0
		for _, d := range durables {
			if d.Stream == p.Stream && d.reads(p.Subject) {
				want[letterKey(d.Name, p.Stream, p.Seq)] = p
				n++
			}
		}
		if n == 0 {
			unread = append(unread, p)
		}
	}
	return want, unread
}

// CompareDeadLetters checks that the dead letters are exactly the poison:
// every poison message dead-lettered once by each durable that reads it,
// and no other letter at all (a real event given up on is a lost step of
// some order). It returns one line per difference, sorted.
func CompareDeadLetters(poison []Injected, durables []Durable, letters []Letter) []string {
	want, unread := ExpectedLetters(poison, durables)
	var out []string
	for _, p := range unread {
		out = append(out, fmt.Sprintf("poison %s seq %d (%s) is read by no durable consumer", p.Stream, p.Seq, p.Subject))
	}
	got := map[string]bool{}
	for _, l := range letters {
		got[l.Subject] = true
		durable, stream, seq, ok := parseLetterSubject(l.Subject)
		p, expected := want[l.Subject]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("dead-letter stream holds %s, not a dead-letter subject", l.Subject))
		case l.Resolved != "":
			out = append(out, fmt.Sprintf("dead letter %s was resolved (%s) during the run", l.Subject, l.Resolved))
		case !expected:
			out = append(out, fmt.Sprintf("unexpected dead letter: %s gave up on %s seq %d (%s): %s", durable, stream, seq, l.OriginalSubject, l.Reason))
		case l.Messages != 1:
			out = append(out, fmt.Sprintf("poison %s seq %d was dead-lettered %d times by %s, want once", stream, seq, l.Messages, durable))
		case l.OriginalSubject != p.Subject:
			out = append(out, fmt.Sprintf("dead letter %s names %q, the poison was published on %q", l.Subject, l.OriginalSubject, p.Subject))
		}
	}
	for key, p := range want {
		if !got[key] {
			durable, _, _, _ := parseLetterSubject(key)
			out = append(out, fmt.Sprintf("poison %s seq %d (%s, %s) was not dead-lettered by %s", p.Stream, p.Seq, p.Subject, p.What, durable))
		}
	}
	slices.Sort(out)
	return out
}
