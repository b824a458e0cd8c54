package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// tempPrefix starts the names of the temporary files of in-flight atomic
// writes; List skips them.
const tempPrefix = ".blipflow-tmp-"

// localStore keeps objects as files under a directory.
type localStore struct {
	url  string // the location as given to Open
	root string // absolute directory
}

func openLocal(location, dir string) (*localStore, error) {
	root, err := filepath.Abs(filepath.FromSlash(dir))
	if err != nil {
		return nil, fmt.Errorf("storage location %q: %w", location, err)
	}
	if info, err := os.Stat(root); err == nil && !info.IsDir() {
		return nil, fmt.Errorf("storage location %q: %s is not a directory", location, root)
	}
	return &localStore{url: location, root: root}, nil
}

func (s *localStore) URL() string { return s.url }

// path returns the file path of key after validating it.
func (s *localStore) path(key string) (string, error) {
	if err := checkKey(s.url, key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

func (s *localStore) Read(ctx context.Context, key string) ([]byte, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, notObjectError("read", key, err)
	}
	return data, nil
}

// notObjectError wraps a file-system error (which names the path) on key,
// adding ErrNotExist when the path is a directory or lies under a file:
// neither names an object.
func notObjectError(op, key string, err error) error {
	if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%s object %q: %w: %w", op, key, err, ErrNotExist)
	}
	return fmt.Errorf("%s object %q: %w", op, key, err)
}

func (s *localStore) Stat(ctx context.Context, key string) (Object, error) {
	p, err := s.path(key)
	if err != nil {
		return Object{}, err
	}
	if err := ctx.Err(); err != nil {
		return Object{}, fmt.Errorf("stat %s: %w", p, err)
	}
	info, err := os.Stat(p)
	if err != nil {
		return Object{}, notObjectError("stat", key, err)
	}
	if !info.Mode().IsRegular() {
		return Object{}, fmt.Errorf("stat %s: not a regular file: %w", p, ErrNotExist)
	}
	return localObject(key, info), nil
}

func localObject(key string, info fs.FileInfo) Object {
	mod := info.ModTime()
	return Object{
		Key:     key,
		Size:    info.Size(),
		ETag:    strconv.FormatInt(info.Size(), 16) + "-" + strconv.FormatInt(mod.UnixNano(), 16),
		ModTime: mod,
	}
}

// Write creates a temporary file beside the target, writes and fsyncs it,
// renames it over the target and fsyncs the directory.
func (s *localStore) Write(ctx context.Context, key string, data []byte) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write object %q: %w", key, err)
	}
	tmp, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("write object %q: %w", key, err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write object %q: %w", key, err)
	}
	if err := tmp.Chmod(0o644 &^ umask()); err != nil {
		return fmt.Errorf("write object %q: %w", key, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write object %q: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write object %q: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("write object %q: %w", key, err)
	}
	committed = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: fsync directory: %w", p, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *localStore) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", p, err)
	}
	info, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete object %q: %w", key, err)
	}
	if info.IsDir() {
		return nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete object %q: %w", key, err)
	}
	return nil
}

// List walks the directory holding the prefix, visiting entries so that keys
// come out in byte-wise lexical order: a directory "a" sorts as "a/", which
// puts "a-b" before "a/c" just as S3 does.
func (s *localStore) List(ctx context.Context, prefix string, fn func(Object) error) error {
	if strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("%s: list prefix %q must be relative", s.url, prefix)
	}
	// Start at the deepest directory that every matching key lies under.
	startDir := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		startDir = prefix[:i]
		if startDir != "" && !fs.ValidPath(startDir) {
			return fmt.Errorf("%s: invalid list prefix %q", s.url, prefix)
		}
	}
	err := s.walk(ctx, startDir, prefix, fn)
	var cb *callbackError
	if errors.As(err, &cb) {
		return cb.err
	}
	return err
}

// callbackError carries an error returned by List's callback up through the
// walk so that List can return it unchanged.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }
func (e *callbackError) Unwrap() error { return e.err }

// walk lists the directory named by dirKey ("" for the root) and recurses
// into subdirectories whose keys can still match prefix.
func (s *localStore) walk(ctx context.Context, dirKey, prefix string, fn func(Object) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", s.url, err)
	}
	dirPath := filepath.Join(s.root, filepath.FromSlash(dirKey))
	entries, err := os.ReadDir(dirPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil // no such directory (yet, or any more): no objects
		}
		return fmt.Errorf("list %s: %w", s.url, err)
	}
	type item struct {
		sortKey string // key, with a trailing '/' for directories
		entry   fs.DirEntry
	}
	items := make([]item, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tempPrefix) {
			continue
		}
		key := path.Join(dirKey, name)
		if e.IsDir() {
			key += "/"
		}
		items = append(items, item{sortKey: key, entry: e})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].sortKey < items[j].sortKey })
	for _, it := range items {
		key := it.sortKey
		if it.entry.IsDir() {
			// Descend when the directory's keys can match the prefix.
			if strings.HasPrefix(key, prefix) || strings.HasPrefix(prefix, key) {
				if err := s.walk(ctx, strings.TrimSuffix(key, "/"), prefix, fn); err != nil {
					return err
				}
			}
			continue
		}
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		info, err := s.fileInfo(dirPath, it.entry)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted while listing
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", s.url, err)
		}
		if info == nil {
			continue
		}
		if err := fn(localObject(key, info)); err != nil {
			return &callbackError{err: err}
		}
	}
	return nil
}

// fileInfo returns the info of a regular file entry (following symbolic
// links to files), or nil for anything else.
func (s *localStore) fileInfo(dirPath string, e fs.DirEntry) (fs.FileInfo, error) {
	if e.Type()&fs.ModeSymlink != 0 {
		info, err := os.Stat(filepath.Join(dirPath, e.Name()))
		if err != nil || !info.Mode().IsRegular() {
			return nil, err
		}
		return info, nil
	}
	if !e.Type().IsRegular() {
		return nil, nil
	}
	return e.Info()
}
