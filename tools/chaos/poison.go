package chaos

import (
	"fmt"
	"slices"

	"github.com/eventshop/shared/platform/deadletter"
	"github.com/eventshop/shared/platform/subjects"
)

// Injected is one poison message chaos published.
type Injected struct {
	Stream  string `json:"stream"`
	Seq     uint64 `json:"seq"`
	Subject string `json:"subject"`
	What    string `json:"what"` // which malformation
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

// ExpectedLetters returns the dead-letter subject of every letter the
// poison must produce: one per poison message and durable that reads it.
// A poison message no durable reads is returned in unread.
func ExpectedLetters(poison []Injected, durables []Durable) (want map[string]Injected, unread []Injected) {
	want = map[string]Injected{}
	for _, p := range poison {
		n := 0
		for _, d := range durables {
			if d.Stream == p.Stream && d.reads(p.Subject) {
				want[deadletter.Subject(d.Name, p.Stream, p.Seq)] = p
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
// some order). letters are the last message of each dead-letter subject
// and messages how many each subject holds (ReadLetters). It returns one
// line per difference, sorted.
func CompareDeadLetters(poison []Injected, durables []Durable, letters []deadletter.Letter, messages map[string]uint64) []string {
	want, unread := ExpectedLetters(poison, durables)
	var out []string
	for _, p := range unread {
		out = append(out, fmt.Sprintf("poison %s seq %d (%s) is read by no durable consumer", p.Stream, p.Seq, p.Subject))
	}
	got := map[string]bool{}
	for _, l := range letters {
		got[l.DLQSubject] = true
		durable, stream, seq, ok := deadletter.ParseSubject(l.DLQSubject)
		p, expected := want[l.DLQSubject]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("dead-letter stream holds %s, not a dead-letter subject", l.DLQSubject))
		case l.Resolved():
			out = append(out, fmt.Sprintf("dead letter %s was resolved (%s) during the run", l.DLQSubject, l.Resolution.Kind))
		case !expected:
			out = append(out, fmt.Sprintf("unexpected dead letter: %s gave up on %s seq %d (%s): %s", durable, stream, seq, l.OriginalSubject, l.Reason))
		case messages[l.DLQSubject] != 1:
			out = append(out, fmt.Sprintf("poison %s seq %d was dead-lettered %d times by %s, want once", stream, seq, messages[l.DLQSubject], durable))
		case l.OriginalSubject != p.Subject:
			out = append(out, fmt.Sprintf("dead letter %s names %q, the poison was published on %q", l.DLQSubject, l.OriginalSubject, p.Subject))
		}
	}
	for key, p := range want {
		if !got[key] {
			durable, _, _, _ := deadletter.ParseSubject(key)
			out = append(out, fmt.Sprintf("poison %s seq %d (%s, %s) was not dead-lettered by %s", p.Stream, p.Seq, p.Subject, p.What, durable))
		}
	}
	slices.Sort(out)
	return out
}
