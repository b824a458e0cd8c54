// Package storage is a small object-store abstraction over a local folder or
// an S3 bucket prefix. Both back ends present a flat key space of '/'-separated
// keys relative to a root, list in lexical key order, and write atomically.
package storage

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// ErrNotExist reports that an object is absent. It is fs.ErrNotExist, so
// errors.Is(err, storage.ErrNotExist) and errors.Is(err, fs.ErrNotExist) agree.
var ErrNotExist = fs.ErrNotExist

// Object is one stored object.
type Object struct {
	Key     string    // key relative to the store root, '/'-separated
	Size    int64     // bytes
	ETag    string    // opaque version tag: the S3 ETag, or size+mtime for local files
	ModTime time.Time // last modification time
}

// Store is a flat key space under a root (a local folder or an S3
// bucket+prefix). Keys use '/' and are relative to the root.
type Store interface {
	// URL returns the root as given to Open, e.g. s3://bucket/prefix or /abs/dir.
	URL() string
	// List calls fn for every object whose key starts with prefix, in lexical
	// (byte-wise) key order. An error from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(Object) error) error
	// Read returns the whole object; errors.Is(err, ErrNotExist) when absent.
	Read(ctx context.Context, key string) ([]byte, error)
	// Write stores data under key atomically: a concurrent reader sees the old
	// object or the whole new one, never part of it.
	Write(ctx context.Context, key string, data []byte) error
	// Stat returns the object's metadata; errors.Is(err, ErrNotExist) when absent.
	Stat(ctx context.Context, key string) (Object, error)
	// Delete removes the object. Deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
}

// Open parses a location and returns the store rooted there. Accepted forms
// are "s3://bucket/prefix" (prefix optional), "file:///abs/dir", and a plain
// file-system path (relative paths are made absolute). cfg only matters for S3.
func Open(ctx context.Context, location string, cfg Config) (Store, error) {
	switch {
	case strings.HasPrefix(location, "s3://"):
		bucket, prefix, err := parseS3Location(location)
		if err != nil {
			return nil, err
		}
		return openS3(ctx, location, bucket, prefix, cfg)
	case strings.HasPrefix(location, "file://"):
		u, err := url.Parse(location)
		if err != nil {
			return nil, fmt.Errorf("storage location %q: %w", location, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("storage location %q: file URL must have an empty host (file:///abs/dir)", location)
		}
		if u.Path == "" {
			return nil, fmt.Errorf("storage location %q: file URL has no path", location)
		}
		return openLocal(location, u.Path)
	case location == "":
		return nil, fmt.Errorf("storage location is empty")
	case strings.Contains(location, "://"):
		return nil, fmt.Errorf("storage location %q: unsupported scheme (want s3://, file:// or a path)", location)
	default:
		return openLocal(location, location)
	}
}

// parseS3Location splits "s3://bucket/some/prefix" into the bucket and a key
// prefix that is empty or ends in '/'.
func parseS3Location(location string) (bucket, prefix string, err error) {
	rest := strings.TrimPrefix(location, "s3://")
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("storage location %q: missing bucket name", location)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return bucket, prefix, nil
}

// checkKey rejects keys that cannot name an object under the root: empty
// keys, absolute keys and keys with empty, "." or ".." elements.
func checkKey(root, key string) error {
	if !fs.ValidPath(key) || key == "." {
		return fmt.Errorf("%s: invalid key %q (want a relative '/'-separated path without '.', '..' or empty elements)", root, key)
	}
	return nil
}

// NormalizeLocation returns the canonical spelling of a location, so that
// spellings of the same place compare equal: a local path (or file:// URL)
// becomes its absolute, cleaned path (out, out/ and ./out/ are one folder);
// an s3:// URL loses its trailing slashes (a prefix means the same with or
// without). Anything else is returned unchanged.
func NormalizeLocation(location string) string {
	switch {
	case strings.HasPrefix(location, "s3://"):
		trimmed := strings.TrimRight(location, "/")
		if len(trimmed) <= len("s3://") {
			return location
		}
		return trimmed
	case strings.HasPrefix(location, "file://"):
		u, err := url.Parse(location)
		if err != nil || (u.Host != "" && u.Host != "localhost") || u.Path == "" {
			return location
		}
		return filepath.Clean(filepath.FromSlash(u.Path))
	case location == "" || strings.Contains(location, "://"):
		return location
	default:
		abs, err := filepath.Abs(filepath.FromSlash(location))
		if err != nil {
			return location
		}
		return abs
	}
}
