package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrUnknownRevision is returned when the repository does not hold the
// revision asked for.
var ErrUnknownRevision = errors.New("unknown revision")

// Revision is the system built as the repository held it at one commit.
type Revision struct {
	Rev    string            // as asked for: a tag, a branch, a short or full commit id
	Commit string            // the full commit id
	Bins   map[string]string // binary path by program name (Specs)
}

// Short returns the first 12 hex digits of the commit id.
func (r Revision) Short() string { return r.Commit[:min(12, len(r.Commit))] }

// BuildRevision builds every program of Specs as the repository at root
// held them at rev into dir/bin. The tree of rev is read with git archive
// into dir/src and removed after the build: the caller's checkout, index,
// refs and worktrees are never touched, and the tree builds with its own
// go.work. Progress goes to out (building takes a minute or so). A
// revision the repository does not hold is ErrUnknownRevision, with what to
// do about it (a shallow clone lacks the history).
func BuildRevision(ctx context.Context, root, rev, dir string, out io.Writer) (Revision, error) {
	commit, err := resolve(ctx, root, rev)
	if err != nil {
		return Revision{}, err
	}
	r := Revision{Rev: rev, Commit: commit}
	src := filepath.Join(dir, "src")
	fmt.Fprintf(out, "stack: building %s (commit %s) in %s ...\n", rev, r.Short(), dir)
	start := time.Now()
	if err := extract(ctx, root, commit, src); err != nil {
		return Revision{}, err
	}
	defer os.RemoveAll(src) // only the binaries are kept
	// -buildvcs=false: the tree is no checkout; if dir lies inside one,
	// its status would be stamped into the binaries as theirs.
	bins, err := build(ctx, src, filepath.Join(dir, "bin"), out, "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -buildvcs=false"))
	if err != nil {
		return Revision{}, fmt.Errorf("build %s (%s): %w", rev, r.Short(), err)
	}
	r.Bins = bins
	fmt.Fprintf(out, "stack: built %s (%s) in %s\n", rev, r.Short(), time.Since(start).Round(100*time.Millisecond))
	return r, nil
}

// resolve returns the full commit id of rev in the repository at root.
func resolve(ctx context.Context, root, rev string) (string, error) {
	if rev == "" || strings.HasPrefix(rev, "-") {
		return "", fmt.Errorf("%w %q", ErrUnknownRevision, rev)
	}
	commit, err := git(ctx, root, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err == nil {
		return commit, nil
	}
	// rev-parse --quiet says nothing about a revision it does not find:
	// tell a shallow clone (the usual reason in CI) from a wrong name.
	shallow, serr := git(ctx, root, "rev-parse", "--is-shallow-repository")
	switch {
	case serr != nil:
		return "", fmt.Errorf("%w %q: cannot read the history of %s: %w", ErrUnknownRevision, rev, root, serr)
	case shallow == "true":
		return "", fmt.Errorf("%w %q: %s is a shallow clone without that history; run git fetch --unshallow (or fetch the revision) first", ErrUnknownRevision, rev, root)
	default:
		return "", fmt.Errorf("%w %q in %s (a commit id, tag or branch; git fetch --tags if it is a tag from elsewhere)", ErrUnknownRevision, rev, root)
	}
}

// extract writes the tree of commit into dir, which it empties first.
func extract(ctx context.Context, root, commit, dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clear %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tarball := dir + ".tar"
	defer os.Remove(tarball)
	if _, err := git(ctx, root, "archive", "--format=tar", "--output="+tarball, commit); err != nil {
		return fmt.Errorf("read commit %s: %w", commit, err)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "tar", "-x", "-f", tarball, "-C", dir)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("unpack commit %s into %s: %w: %s", commit, dir, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// git runs git in the repository at root and returns its trimmed output.
func git(ctx context.Context, root string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", root}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", fmt.Errorf("git %s: %w: %s", args[0], err, msg)
		}
		return "", fmt.Errorf("git %s: %w", args[0], err)
	}
	return strings.TrimSpace(stdout.String()), nil
}
