// Package hub resolves a model reference to a local folder holding the
// model's files. A reference is either a local folder, returned as is, or a
// Hugging Face Hub repository id such as "Salesforce/blip2-opt-2.7b@main",
// looked up in (and, when needed, downloaded into) the standard Hugging Face
// cache layout, so that this package and Python tools share one cache.
package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Errors that Resolve wraps, for callers that test with errors.Is.
var (
	// ErrNotCached means the model is not complete in the local cache and
	// the network may not be used.
	ErrNotCached = errors.New("model not in the local cache")
	// ErrNotFound means the Hub has no such repository, revision or file.
	ErrNotFound = errors.New("not found on the Hub")
	// ErrUnauthorized means the Hub refused access (gated or private model).
	ErrUnauthorized = errors.New("access denied by the Hub")
	// ErrUnreachable means the Hub endpoint could not be contacted.
	ErrUnreachable = errors.New("Hub endpoint unreachable")
	// ErrChecksum means a downloaded file does not match its sha256.
	ErrChecksum = errors.New("sha256 mismatch")
)

// Options configures Resolve. The zero value follows the environment the
// way the Python huggingface_hub library does.
type Options struct {
	// Endpoint is the Hub base URL; empty means $HF_ENDPOINT, else
	// https://huggingface.co.
	Endpoint string
	// Token is sent as "Authorization: Bearer" to the Hub (never to other
	// hosts); empty means $HF_TOKEN, else the token file that
	// `huggingface-cli login` writes.
	Token string
	// CacheDir is the hub cache folder; empty means $HF_HUB_CACHE, else
	// $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
	// ~/.cache/huggingface/hub.
	CacheDir string
	// Offline forbids all network access, as HF_HUB_OFFLINE=1 does.
	Offline bool
	// Progress receives one progress bar per downloaded file; nil shows none.
	Progress io.Writer
	// HTTPClient sends the requests; nil means a client with connect and
	// response-header timeouts. Redirects never carry the token to another host.
	HTTPClient *http.Client
	// Attempts bounds the tries of one request on 5xx answers, timeouts and
	// dropped connections; 0 means 5.
	Attempts int
	// RetryBackoff is the wait before the first retry, doubled after each
	// one up to 30s; 0 means 1s.
	RetryBackoff time.Duration
	// StallTimeout abandons (and retries) a download that receives no bytes
	// for this long; 0 means 60s.
	StallTimeout time.Duration
}

const (
	defaultEndpoint     = "https://huggingface.co"
	defaultAttempts     = 5
	defaultRetryBackoff = time.Second
	maxRetryBackoff     = 30 * time.Second
	defaultStallTimeout = time.Minute
)

// settings is Options with every default filled in.
type settings struct {
	endpoint     string
	token        string
	cacheDir     string
	offline      bool
	progress     io.Writer
	client       *http.Client
	attempts     int
	retryBackoff time.Duration
	stallTimeout time.Duration
}

// settings fills the defaults of o from the environment.
func (o Options) settings() (settings, error) {
	s := settings{
		endpoint:     o.Endpoint,
		token:        o.Token,
		cacheDir:     o.CacheDir,
		offline:      o.Offline || envTrue(os.Getenv("HF_HUB_OFFLINE")),
		progress:     o.Progress,
		client:       o.HTTPClient,
		attempts:     o.Attempts,
		retryBackoff: o.RetryBackoff,
		stallTimeout: o.StallTimeout,
	}
	if s.endpoint == "" {
		s.endpoint = os.Getenv("HF_ENDPOINT")
	}
	if s.endpoint == "" {
		s.endpoint = defaultEndpoint
	}
	s.endpoint = strings.TrimRight(s.endpoint, "/")
	if s.token == "" {
		s.token = tokenFromEnv()
	}
	if s.cacheDir == "" {
		dir, err := cacheDirFromEnv()
		if err != nil {
			return settings{}, err
		}
		s.cacheDir = dir
	}
	if s.client == nil {
		s.client = defaultHTTPClient()
	}
	if s.attempts <= 0 {
		s.attempts = defaultAttempts
	}
	if s.retryBackoff <= 0 {
		s.retryBackoff = defaultRetryBackoff
	}
	if s.stallTimeout <= 0 {
		s.stallTimeout = defaultStallTimeout
	}
	return s, nil
}

// envTrue reports whether an environment value switches a flag on, with the
// spellings huggingface_hub accepts.
func envTrue(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

// hfHome is the Hugging Face home folder: $HF_HOME, else
// $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
func hfHome() (string, error) {
	if home := os.Getenv("HF_HOME"); home != "" {
		return home, nil
	}
	if xdg := os.Getenv("XDG_CACHE_HOME"); xdg != "" {
		return filepath.Join(xdg, "huggingface"), nil
	}
	user, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("hub cache: set HF_HOME or HF_HUB_CACHE: %w", err)
	}
	return filepath.Join(user, ".cache", "huggingface"), nil
}

// cacheDirFromEnv is the hub cache folder named by the environment.
func cacheDirFromEnv() (string, error) {
	if dir := os.Getenv("HF_HUB_CACHE"); dir != "" {
		return dir, nil
	}
	home, err := hfHome()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "hub"), nil
}

// tokenFromEnv is $HF_TOKEN, else the content of $HF_TOKEN_PATH or
// $HF_HOME/token, else empty.
func tokenFromEnv() string {
	if token := strings.TrimSpace(os.Getenv("HF_TOKEN")); token != "" {
		return token
	}
	path := os.Getenv("HF_TOKEN_PATH")
	if path == "" {
		home, err := hfHome()
		if err != nil {
			return ""
		}
		path = filepath.Join(home, "token")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// isDir reports whether path is an existing folder.
func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

// Resolve returns the local folder of the model named by ref.
//
// A ref naming an existing folder is returned unchanged. Otherwise ref is a
// Hub repository id ORG/NAME with an optional "@REVISION" (default "main").
// A cached snapshot holding the files BLIP-2 needs is used without any
// network access; otherwise the missing files are downloaded from the Hub
// into the cache, unless offline mode is on, which is an error. A ref whose
// first segment is an existing local folder (models/opt-tiny beside a
// models/ folder) is a mistyped path, not a Hub id: it fails at once.
func Resolve(ctx context.Context, ref string, opts Options) (string, error) {
	if info, err := os.Stat(ref); err == nil {
		if !info.IsDir() {
			return "", fmt.Errorf("model %s: is a file, want a model folder or a Hub repo id", ref)
		}
		return ref, nil
	}
	r, err := ParseRef(ref)
	if err != nil {
		return "", fmt.Errorf("model %q is not a local folder, and %w", ref, err)
	}
	s, err := opts.settings()
	if err != nil {
		return "", err
	}
	cache := newRepoCache(s.cacheDir, r.Repo)
	dir, missing := cache.cachedSnapshot(r.Revision)
	if len(missing) == 0 {
		return dir, nil
	}
	if first, _, _ := strings.Cut(r.Repo, "/"); isDir(first) {
		return "", fmt.Errorf("model %s: no such folder (%s/ exists here, so it names a local path); as a Hugging Face Hub repo id it is not in the cache either — pass an existing checkpoint folder, or run where no folder %s/ exists to download the repo",
			ref, first, first)
	}
	if s.offline {
		return "", fmt.Errorf("model %s: %w (offline mode, HF_HUB_OFFLINE=1): %s lacks %s; download it once with network access",
			r, ErrNotCached, cache.root, strings.Join(missing, ", "))
	}
	f := newFetcher(s, r, cache)
	dir, err = f.fetch(ctx)
	if err != nil {
		return "", fmt.Errorf("model %s: no such local folder, and as a Hugging Face Hub repo id: %w", ref, err)
	}
	return dir, nil
}
