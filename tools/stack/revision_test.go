package stack

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeRepo makes a git repository holding a workspace with a main package
// at every Spec's import path, each printing version, committed; it
// returns the repository and the commit.
func fakeRepo(t *testing.T, dir, version string) string {
	t.Helper()
	work := "go 1.22\n\nuse (\n"
	for _, s := range Specs {
		rel := strings.TrimPrefix(s.Pkg, "github.com/eventshop/")
		mod := strings.SplitN(rel, "/", 2)[0]
		write(t, filepath.Join(dir, rel, "main.go"), "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\""+s.Name+" "+version+"\") }\n")
		if _, err := os.Stat(filepath.Join(dir, mod, "go.mod")); err != nil {
			write(t, filepath.Join(dir, mod, "go.mod"), "module github.com/eventshop/"+mod+"\n\ngo 1.22\n")
			work += "\t./" + mod + "\n"
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "go.work")); err != nil {
		write(t, filepath.Join(dir, "go.work"), work+")\n")
	}
	gitT(t, dir, "add", "-A")
	gitT(t, dir, "commit", "-q", "-m", version)
	return gitT(t, dir, "rev-parse", "HEAD")
}

func write(t *testing.T, file, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func gitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func needGit(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
}

// TestBuildRevisionBuildsTheOldTreeAndLeavesTheCheckoutAlone: the binaries
// are the committed old version's, while the checkout moved on (a newer
// commit and an uncommitted change) keeps its HEAD, index, files and
// worktrees.
func TestBuildRevisionBuildsTheOldTreeAndLeavesTheCheckoutAlone(t *testing.T) {
	t.Parallel()
	needGit(t)
	repo := t.TempDir()
	gitT(t, repo, "init", "-q")
	v1 := fakeRepo(t, repo, "v1")
	fakeRepo(t, repo, "v2")
	main := filepath.Join(repo, "order-service", "cmd", "order-service", "main.go")
	write(t, main, "package main\n\nfunc main() { println(\"uncommitted\") }\n")
	state := func() string {
		return gitT(t, repo, "rev-parse", "HEAD") + "\n" + gitT(t, repo, "status", "--porcelain") + "\n" + gitT(t, repo, "worktree", "list") + "\n" + gitT(t, repo, "stash", "list")
	}
	before := state()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := t.TempDir()
	rev, err := BuildRevision(ctx, repo, v1[:7], out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rev.Commit != v1 || rev.Rev != v1[:7] || len(rev.Bins) != len(Specs) {
		t.Fatalf("BuildRevision = %+v, want commit %s and a binary per Spec", rev, v1)
	}
	for _, s := range Specs {
		got, err := exec.Command(rev.Bins[s.Name]).Output()
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if want := s.Name + " v1"; strings.TrimSpace(string(got)) != want {
			t.Fatalf("%s prints %q, want %q", rev.Bins[s.Name], got, want)
		}
	}
	if after := state(); after != before {
		t.Fatalf("the checkout changed:\nbefore %s\nafter  %s", before, after)
	}
	if b, _ := os.ReadFile(main); !strings.Contains(string(b), "uncommitted") {
		t.Fatal("the uncommitted change is gone")
	}
	if _, err := os.Stat(filepath.Join(out, "src")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the extracted tree is left behind: %v", err)
	}
}

func TestBuildRevisionRefusesAnUnknownRevision(t *testing.T) {
	t.Parallel()
	needGit(t)
	repo := t.TempDir()
	gitT(t, repo, "init", "-q")
	v1 := fakeRepo(t, repo, "v1")
	fakeRepo(t, repo, "v2")
	shallow := filepath.Join(t.TempDir(), "shallow")
	gitT(t, repo, "clone", "-q", "--depth", "1", "file://"+repo, shallow)

	tests := []struct {
		name, root, rev string
		wantText        string
	}{
		{name: "no such name", root: repo, rev: "release-0", wantText: `unknown revision "release-0" in ` + repo},
		{name: "an option is no revision", root: repo, rev: "--output=/tmp/x", wantText: `unknown revision "--output=/tmp/x"`},
		{name: "empty", root: repo, rev: "", wantText: `unknown revision ""`},
		{name: "history a shallow clone lacks", root: shallow, rev: v1, wantText: "git fetch --unshallow"},
		{name: "no repository", root: t.TempDir(), rev: "HEAD", wantText: "not a git repository"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := t.TempDir()
			_, err := BuildRevision(context.Background(), tt.root, tt.rev, out, io.Discard)
			if !errors.Is(err, ErrUnknownRevision) || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("BuildRevision(%q) = %v, want %v saying %q", tt.rev, err, ErrUnknownRevision, tt.wantText)
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Fatalf("an unknown revision left %v in the output directory", entries)
			}
		})
	}
}
