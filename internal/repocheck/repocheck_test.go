package repocheck

import (
	"bytes"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// outside matches text that points at files outside the repository. The
// names are built by concatenation so that this file does not match itself.
var outside = regexp.MustCompile(strings.Join([]string{
	regexp.QuoteMeta("../"+"shared") + `\b`,
	`\b` + regexp.QuoteMeta("shared/"+"PROTOCOL"+".md") + `\b`,
	`\b` + regexp.QuoteMeta("PROTOCOL"+".md") + `\b`,
	`\b` + regexp.QuoteMeta("DESIGN"+".md") + `\b`,
	`\b` + regexp.QuoteMeta("STYLE"+".md") + `\b`,
}, "|"))

// mayRefer is a cheap test that every match of outside passes: each of
// its names holds "shared" or ".md". Run first on a file, then on each of
// its lines, it spares the regexp almost all of the bench results, which
// it took two minutes to read under the race detector.
func mayRefer(b []byte) bool {
	return bytes.Contains(b, []byte("shared")) || bytes.Contains(b, []byte(".md"))
}

// repoRoot returns the repository root: two levels above this package's
// directory (internal/repocheck), where go.mod is.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found above the test's directory: %v", err)
	}
	return root
}

// repoFiles lists the files git tracks, plus untracked files that are not
// ignored, relative to root.
func repoFiles(t *testing.T, root string) []string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed: cannot list the repository's files")
	}
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skipf("%s is not a git checkout: cannot list the repository's files", root)
	}
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v: %s", err, stderr.Bytes())
	}
	var files []string
	seen := map[string]bool{}
	dirs := map[string]bool{".": true}
	for _, f := range strings.Split(string(out), "\x00") {
		if f != "" && !seen[f] { // a file in a merge conflict is listed per stage
			seen[f] = true
			files = append(files, f)
			for d := path.Dir(f); !dirs[d]; d = path.Dir(d) {
				dirs[d] = true
			}
		}
	}
	// go test caches a passing result until a file the test opened
	// changes; the list above comes from git, which it cannot see. Reading
	// every directory makes a file added anywhere (in a new directory too)
	// a change it sees.
	for d := range dirs {
		_, _ = os.ReadDir(filepath.Join(root, filepath.FromSlash(d)))
	}
	return files
}

// contents returns what to search in the file name: a symlink's target,
// or the file's bytes. ok is false for what cannot or need not be read
// (deleted but still tracked, a directory such as a submodule, binary).
func contents(name string) (b []byte, ok bool) {
	fi, err := os.Lstat(name)
	switch {
	case err != nil, fi.IsDir():
		return nil, false
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(name)
		return []byte(target), err == nil
	case !fi.Mode().IsRegular():
		return nil, false
	}
	b, err = os.ReadFile(name)
	if err != nil || binary(b) {
		return nil, false
	}
	return b, true
}

// binary reports whether b looks like a binary file: a NUL byte in its
// first 8000 bytes, the test git itself uses.
func binary(b []byte) bool {
	return bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0
}

// TestNoReferencesOutsideRepository fails, naming file:line, on every line
// of the repository's text files that points outside the repository.
func TestNoReferencesOutsideRepository(t *testing.T) {
	root := repoRoot(t)
	files := repoFiles(t, root)
	if len(files) == 0 {
		t.Fatal("git ls-files listed no files")
	}
	scanned, hits := 0, 0
	for _, f := range files {
		b, ok := contents(filepath.Join(root, filepath.FromSlash(f)))
		if !ok {
			continue
		}
		scanned++
		if !mayRefer(b) {
			continue
		}
		for i, line := range bytes.Split(b, []byte("\n")) {
			if !mayRefer(line) {
				continue
			}
			if m := outside.FindAll(line, -1); m != nil {
				hits++
				t.Errorf("%s:%d: refers outside the repository (%s): %s",
					f, i+1, bytes.Join(m, []byte(", ")), bytes.TrimSpace(line))
			}
		}
	}
	if hits > 0 {
		t.Logf("%d lines in %d scanned files refer to documents that are not in this repository; "+
			"refer to docs/protocol.md (the wire protocol) instead, or drop the reference", hits, scanned)
	}
}

// TestPatternsMatch guards the patterns: each kind of reference is caught,
// on word boundaries only, and passes mayRefer; docs/protocol.md is not
// caught.
func TestPatternsMatch(t *testing.T) {
	for _, s := range []string{
		"see ../" + "shared/" + "PROTOCOL" + ".md",
		"(" + "PROTOCOL" + ".md, \"Rules\")",
		"the project's " + "shared " + "DESIGN" + ".md",
		"STYLE" + ".md says",
		"cd ../" + "shared",
	} {
		if !outside.MatchString(s) {
			t.Errorf("not caught: %q", s)
		}
		if !mayRefer([]byte(s)) {
			t.Errorf("skipped by mayRefer before the patterns see it: %q", s)
		}
	}
	for _, s := range []string{
		"see docs/protocol.md",
		"MY" + "PROTOCOL" + ".md",
		"PROTOCOL" + ".mdx",
		"../" + "shared_cache",
		"shared memory",
	} {
		if outside.MatchString(s) {
			t.Errorf("caught, but should not be: %q", s)
		}
	}
}
