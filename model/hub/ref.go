package hub

import (
	"fmt"
	"regexp"
	"strings"
)

// DefaultRevision is the revision used when a reference names none.
const DefaultRevision = "main"

// Ref names a model repository on the Hub at one revision.
type Ref struct {
	// Repo is the repository id, "ORG/NAME".
	Repo string
	// Revision is a branch, tag or 40-hex commit hash.
	Revision string
}

// String formats r as "ORG/NAME@REVISION".
func (r Ref) String() string { return r.Repo + "@" + r.Revision }

var (
	repoIDPattern     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*/[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	commitHashPattern = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// ParseRef parses "ORG/NAME[@REVISION]".
func ParseRef(ref string) (Ref, error) {
	repo, revision, hasRevision := strings.Cut(ref, "@")
	if !repoIDPattern.MatchString(repo) || strings.Contains(repo, "--") || strings.Contains(repo, "..") || len(repo) > 96 {
		return Ref{}, fmt.Errorf("repo id %q is not of the form ORG/NAME[@REVISION]", ref)
	}
	if !hasRevision {
		revision = DefaultRevision
	}
	if err := checkRevision(revision); err != nil {
		return Ref{}, fmt.Errorf("repo id %q: %w", ref, err)
	}
	return Ref{Repo: repo, Revision: revision}, nil
}

// checkRevision rejects revisions that could escape the refs folder.
func checkRevision(revision string) error {
	if revision == "" {
		return fmt.Errorf("empty revision")
	}
	if strings.ContainsAny(revision, "\\\x00") {
		return fmt.Errorf("revision %q holds a forbidden character", revision)
	}
	for _, part := range strings.Split(revision, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("revision %q has an empty, . or .. path segment", revision)
		}
	}
	return nil
}

// isCommitHash reports whether revision is a full git commit hash.
func isCommitHash(revision string) bool { return commitHashPattern.MatchString(revision) }
