package sharding

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// IsURL reports whether s is an http(s) URL (fetched, not read from a
// store).
func IsURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// IsAbsolute reports whether s names an object on its own: an http(s)
// URL, an s3:// or file:// location, or an absolute file path.
func IsAbsolute(s string) bool {
	return IsURL(s) || strings.HasPrefix(s, "s3://") || strings.HasPrefix(s, "file://") || filepath.IsAbs(s)
}

// hasScheme reports whether s starts with a URL scheme ("gopher://").
func hasScheme(s string) bool {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return false
	}
	for i, c := range scheme {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// Resolve names key in full: key itself when it is absolute or has a URL
// scheme, else key under base (a folder or s3:// prefix).
func Resolve(base, key string) string {
	if IsAbsolute(key) || hasScheme(key) || base == "" {
		return key
	}
	return strings.TrimSuffix(base, "/") + "/" + strings.TrimPrefix(key, "/")
}

// SplitLocation splits the location of one object into a store root and
// the key under it: the bucket for s3://bucket/a/b.jpg ("s3://bucket",
// "a/b.jpg") and the file-system root for a path, so that one store serves
// every object of a bucket or disk. Relative paths are made absolute.
func SplitLocation(location string) (root, key string, err error) {
	switch {
	case strings.HasPrefix(location, "s3://"):
		bucket, key, _ := strings.Cut(strings.TrimPrefix(location, "s3://"), "/")
		if bucket == "" || key == "" {
			return "", "", fmt.Errorf("location %q: want s3://bucket/key", location)
		}
		return "s3://" + bucket, key, nil
	case IsURL(location):
		return "", "", fmt.Errorf("location %q: an http(s) URL is fetched, not read from a store", location)
	case strings.Contains(location, "://") && !strings.HasPrefix(location, "file://"):
		return "", "", fmt.Errorf("location %q: unsupported scheme (want s3://, file://, http(s):// or a path)", location)
	}
	path, err := filepath.Abs(filepath.FromSlash(strings.TrimPrefix(location, "file://")))
	if err != nil {
		return "", "", fmt.Errorf("location %q: %w", location, err)
	}
	volume := filepath.VolumeName(path)
	root = volume + string(filepath.Separator)
	key = filepath.ToSlash(strings.TrimPrefix(path[len(volume):], string(filepath.Separator)))
	if key == "" {
		return "", "", fmt.Errorf("location %q: names a root folder, not an object", location)
	}
	return root, key, nil
}

// Within reports whether location names an object under root, both given
// as s3:// prefixes or as paths (file:// or plain; relative ones taken
// from the working folder), after '.' and '..' elements are resolved.
// Symbolic links are not followed.
func Within(root, location string) bool {
	if strings.HasPrefix(root, "s3://") || strings.HasPrefix(location, "s3://") {
		if !strings.HasPrefix(root, "s3://") || !strings.HasPrefix(location, "s3://") {
			return false
		}
		r := path.Clean("/" + strings.TrimPrefix(root, "s3://"))
		l := path.Clean("/" + strings.TrimPrefix(location, "s3://"))
		return strings.HasPrefix(l, strings.TrimSuffix(r, "/")+"/")
	}
	if strings.Contains(root, "://") && !strings.HasPrefix(root, "file://") ||
		strings.Contains(location, "://") && !strings.HasPrefix(location, "file://") {
		return false
	}
	r, err1 := filepath.Abs(filepath.FromSlash(strings.TrimPrefix(root, "file://")))
	l, err2 := filepath.Abs(filepath.FromSlash(strings.TrimPrefix(location, "file://")))
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.HasPrefix(l, strings.TrimSuffix(r, string(filepath.Separator))+string(filepath.Separator))
}
