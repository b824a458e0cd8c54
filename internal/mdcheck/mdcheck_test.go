package mdcheck

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFindsDefects(t *testing.T) {
	for _, c := range []struct {
		name, doc string
		want      []string
	}{
		{"clean", "# T\n\n```sh\n# a shell comment\nls\n```\n\n## Next\n\n~~~\ncode\n~~~\n", nil},
		{"unclosed", "# T\n\n```sh\nls\n", []string{"line 3: code fence (sh) is never closed"}},
		{"info string does not close", "```sh\nls\n```sh\nmore\n", []string{"line 1: code fence (sh) is never closed"}},
		{"stray fence swallows a section", "```\nls\n```\n\nprose\n```\n\n## Embeddings\n\ntext\n\n```sh\nx\n```\n",
			[]string{`line 8: heading "## Embeddings" is inside the code block opened at line 6`}},
		{"longer fence holds a shorter one", "````\n```\n## not a heading\n```\n````\n", []string{`line 3: heading "## not a heading"`}},
		{"tilde does not close backticks", "```\n~~~\n", []string{"line 1: code fence is never closed"}},
		{"indented code is not a fence", "    ```\ntext\n", nil},
		{"inline backticks are not a fence", "```a` b\ntext\n", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Check(strings.NewReader(c.doc))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %d problems %q", got, len(c.want), c.want)
			}
			for i, p := range got {
				if !strings.HasPrefix(p.String(), c.want[i]) {
					t.Errorf("problem %d = %q, want prefix %q", i, p, c.want[i])
				}
			}
		})
	}
}

// TestRepositoryMarkdown checks every tracked Markdown file of the
// repository: each code fence closes and no section heading falls inside
// code.
func TestRepositoryMarkdown(t *testing.T) {
	root, files := markdownFiles(t)
	if len(files) == 0 {
		t.Fatal("no Markdown files found")
	}
	for _, rel := range files {
		f, err := os.Open(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		problems, err := Check(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		for _, p := range problems {
			t.Errorf("%s:%s", rel, p)
		}
	}
}

// markdownFiles lists the repository's tracked *.md files (git ls-files),
// or every *.md outside hidden folders when git is not at hand.
func markdownFiles(t *testing.T) (string, []string) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	cmd := exec.Command("git", "ls-files", "-z", "--", "*.md")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		var files []string
		for _, f := range strings.Split(string(out), "\x00") {
			if f != "" {
				files = append(files, f)
			}
		}
		return root, files
	}
	var files []string
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
			rel, _ := filepath.Rel(root, path)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(fmt.Errorf("walking %s: %w", root, err))
	}
	return root, files
}
