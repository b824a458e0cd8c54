package hub

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// repoCache is one model repository's folder in the Hugging Face hub cache:
//
//	models--ORG--NAME/refs/<revision>            commit hash of a branch or tag
//	models--ORG--NAME/snapshots/<commit>/<file>  symlink to ../../blobs/<etag>
//	models--ORG--NAME/blobs/<etag>               file content
//	.locks/models--ORG--NAME/<etag>.lock         download lock
type repoCache struct {
	// root is the repository folder, <cache>/models--ORG--NAME.
	root string
	// locks is the repository's lock folder, <cache>/.locks/models--ORG--NAME.
	locks string
}

// newRepoCache locates the folder of repo inside the hub cache cacheDir.
func newRepoCache(cacheDir, repo string) repoCache {
	folder := "models--" + strings.ReplaceAll(repo, "/", "--")
	return repoCache{
		root:  filepath.Join(cacheDir, folder),
		locks: filepath.Join(cacheDir, ".locks", folder),
	}
}

// refPath is the file holding the commit hash of a branch or tag.
func (c repoCache) refPath(revision string) string {
	return filepath.Join(c.root, "refs", filepath.FromSlash(revision))
}

// snapshotDir is the folder of one commit's files.
func (c repoCache) snapshotDir(commit string) string {
	return filepath.Join(c.root, "snapshots", commit)
}

// blobPath is the content file of an etag.
func (c repoCache) blobPath(etag string) string {
	return filepath.Join(c.root, "blobs", etag)
}

// lockPath is the lock file guarding the download of an etag, where
// huggingface_hub puts it, so that Python and Go downloads exclude each other.
func (c repoCache) lockPath(etag string) string {
	return filepath.Join(c.locks, etag+".lock")
}

// commitOf returns the commit a revision points to in the cache.
func (c repoCache) commitOf(revision string) (string, error) {
	if isCommitHash(revision) {
		return revision, nil
	}
	data, err := os.ReadFile(c.refPath(revision))
	if err != nil {
		return "", err
	}
	commit := strings.TrimSpace(string(data))
	if !isCommitHash(commit) {
		return "", fmt.Errorf("ref %s: %q is not a commit hash", c.refPath(revision), commit)
	}
	return commit, nil
}

// cachedSnapshot returns the snapshot folder of revision and what it lacks
// to load the model (nothing when it is ready for offline use).
func (c repoCache) cachedSnapshot(revision string) (string, []string) {
	commit, err := c.commitOf(revision)
	if err != nil {
		return "", []string{fmt.Sprintf("revision %s (refs/%s)", revision, revision)}
	}
	dir := c.snapshotDir(commit)
	if _, err := os.Stat(dir); err != nil {
		return "", []string{"snapshot " + commit}
	}
	return dir, missingFiles(dir)
}

// writeRef records the commit a branch or tag points to, atomically.
func (c repoCache) writeRef(revision, commit string) error {
	path := c.refPath(revision)
	if current, err := os.ReadFile(path); err == nil && string(current) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("ref %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".ref-*")
	if err != nil {
		return fmt.Errorf("ref %s: %w", path, err)
	}
	_, werr := tmp.WriteString(commit)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ref %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("ref %s: %w", path, err)
	}
	return nil
}

// linkSnapshotFile points snapshots/<commit>/<name> at its blob with a
// relative symlink, as huggingface_hub does.
func linkSnapshotFile(blob, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("snapshot file %s: %w", dst, err)
	}
	target, err := filepath.Rel(filepath.Dir(dst), blob)
	if err != nil {
		return fmt.Errorf("snapshot file %s: %w", dst, err)
	}
	// A dangling link left by an interrupted run is replaced.
	if _, err := os.Lstat(dst); err == nil {
		if err := os.Remove(dst); err != nil {
			return fmt.Errorf("snapshot file %s: %w", dst, err)
		}
	}
	if err := os.Symlink(target, dst); err != nil {
		// Another process may have linked it meanwhile; accept a working link.
		if _, statErr := os.Stat(dst); statErr == nil {
			return nil
		}
		return fmt.Errorf("snapshot file %s: %w", dst, err)
	}
	return nil
}

// fileExists reports whether path (after symlinks) is a regular file.
func fileExists(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular()
}
