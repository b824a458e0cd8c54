// Package fetch downloads images by http(s) URL for the pipeline: each
// request has a timeout, failures that may pass (5xx, 408, 429, timeouts,
// connection errors) are retried with jittered exponential backoff, redirects
// are followed up to a bound, bodies are capped in size, and a host gets at
// most a few requests at once. A failure is an *Error whose message is the
// reason an error row gives ("http 404", "timeout after 10s").
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"syscall"
	"time"

	"blipflow/internal/retry"
)

// Config tunes a Fetcher; zero fields take the defaults.
type Config struct {
	// Timeout bounds one attempt, body included (10s).
	Timeout time.Duration
	// Retries is the number of attempts after the first for failures that
	// may pass (3; negative: none).
	Retries int
	// Backoff is the delay before the first retry; it doubles with each
	// retry, with jitter, up to MaxBackoff (500ms, 10s).
	Backoff, MaxBackoff time.Duration
	// MaxBytes caps a response body (20 MB).
	MaxBytes int64
	// PerHost caps the requests to one host at once (8).
	PerHost int
	// MaxRedirects caps the redirects one request follows (5).
	MaxRedirects int
	// UserAgent is sent with each request ("blipflow").
	UserAgent string
	// AllowPrivate lets requests reach loopback, link-local and private
	// addresses, which are refused by default (checked on the connected
	// address, after DNS resolution, for every redirect too).
	AllowPrivate bool
	// Transport carries the requests (nil: a clone of
	// http.DefaultTransport that dials only public addresses unless
	// AllowPrivate, and uses no proxy then, since a proxy would hide the
	// address reached).
	Transport http.RoundTripper
}

// Defaults of Config.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultRetries      = 3
	DefaultBackoff      = 500 * time.Millisecond
	DefaultMaxBackoff   = 10 * time.Second
	DefaultMaxBytes     = 20_000_000
	DefaultPerHost      = 8
	DefaultMaxRedirects = 5
)

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.Retries == 0:
		c.Retries = DefaultRetries
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.PerHost <= 0 {
		c.PerHost = DefaultPerHost
	}
	if c.MaxRedirects <= 0 {
		c.MaxRedirects = DefaultMaxRedirects
	}
	if c.UserAgent == "" {
		c.UserAgent = "blipflow"
	}
	if c.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = c.PerHost
		if !c.AllowPrivate {
			dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: checkDial}
			t.DialContext = dialer.DialContext
			t.Proxy = nil
		}
		c.Transport = t
	}
	return c
}

// Fetcher downloads URLs. It is safe for concurrent use.
type Fetcher struct {
	cfg    Config
	client *http.Client
	hosts  hostLimiter
}

// New returns a Fetcher with cfg's settings.
func New(cfg Config) *Fetcher {
	cfg = cfg.withDefaults()
	f := &Fetcher{cfg: cfg, hosts: hostLimiter{limit: cfg.PerHost, slots: map[string]*hostSlots{}}}
	f.client = &http.Client{
		Transport: cfg.Transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > cfg.MaxRedirects {
				return errTooManyRedirects
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w %q in a redirect", errUnsupportedScheme, req.URL.Scheme)
			}
			return nil
		},
	}
	return f
}

// Config returns the settings in use, defaults filled in.
func (f *Fetcher) Config() Config { return f.cfg }

// Error is a failed fetch.
type Error struct {
	URL string
	// Reason is the short cause: "http 404", "timeout after 10s",
	// "too large (>20 MB)", "dns: no such host", "connect: connection
	// refused", "too many redirects (>5)".
	Reason string
	// Attempts is the number of requests made.
	Attempts int
	// Temporary is set when a later try might succeed.
	Temporary bool
	// Err is the underlying error, if any.
	Err error
}

func (e *Error) Error() string { return e.Reason }

func (e *Error) Unwrap() error { return e.Err }

var errTooManyRedirects = errors.New("too many redirects")

// Fetch returns the body of rawURL. It retries failures that may pass
// and gives up with an *Error, or with ctx's error when ctx ends.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	switch {
	case err != nil:
		return nil, &Error{URL: rawURL, Reason: "bad url", Err: err}
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, &Error{URL: rawURL, Reason: fmt.Sprintf("unsupported scheme %q (want http or https)", u.Scheme)}
	case u.Host == "":
		return nil, &Error{URL: rawURL, Reason: "bad url"}
	}
	release, err := f.hosts.acquire(ctx, u.Host)
	if err != nil {
		return nil, err
	}
	defer release()
	policy := retry.Policy{Attempts: f.cfg.Retries + 1, Initial: f.cfg.Backoff, Max: f.cfg.MaxBackoff}
	var data []byte
	attempts := 0
	err = policy.Do(ctx, "fetch", func() error {
		attempts++
		var ferr *Error
		if data, ferr = f.attempt(ctx, rawURL); ferr != nil {
			ferr.Attempts = attempts
			if !ferr.Temporary {
				return retry.Permanent(ferr)
			}
			return ferr
		}
		return nil
	}, nil)
	if err == nil {
		return data, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if ferr, ok := errors.AsType[*Error](err); ok {
		return nil, ferr
	}
	return nil, err
}

// attempt makes one request.
func (f *Fetcher) attempt(ctx context.Context, rawURL string) ([]byte, *Error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, &Error{URL: rawURL, Reason: "bad url", Err: err}
	}
	req.Header.Set("User-Agent", f.cfg.UserAgent)
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, f.classify(ctx, rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		code := resp.StatusCode
		return nil, &Error{URL: rawURL, Reason: "http " + strconv.Itoa(code),
			Temporary: code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests}
	}
	if resp.ContentLength > f.cfg.MaxBytes {
		return nil, f.tooLarge(rawURL)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBytes+1))
	if err != nil {
		return nil, f.classify(ctx, rawURL, err)
	}
	if int64(len(data)) > f.cfg.MaxBytes {
		return nil, f.tooLarge(rawURL)
	}
	return data, nil
}

func (f *Fetcher) tooLarge(rawURL string) *Error {
	return &Error{URL: rawURL, Reason: fmt.Sprintf("too large (>%s)", formatBytes(f.cfg.MaxBytes))}
}

// classify turns a transport error into an Error with its reason.
func (f *Fetcher) classify(ctx context.Context, rawURL string, err error) *Error {
	e := &Error{URL: rawURL, Err: err}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.Is(err, ErrRefusedAddress):
		var refused string
		if opErr, ok := errors.AsType[*net.OpError](err); ok {
			refused = opErr.Err.Error()
		} else {
			refused = err.Error()
		}
		e.Reason = refused + "; --allow-private-addresses allows it"
	case errors.Is(err, errUnsupportedScheme):
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		e.Reason = err.Error()
	case errors.Is(err, errTooManyRedirects):
		e.Reason = fmt.Sprintf("too many redirects (>%d)", f.cfg.MaxRedirects)
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		e.Reason, e.Temporary = "timeout after "+f.cfg.Timeout.String(), true
	case errors.As(err, &dnsErr):
		e.Reason, e.Temporary = "dns: "+dnsErr.Err, !dnsErr.IsNotFound
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Reason, e.Temporary = "connect: connection refused", true
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		e.Reason, e.Temporary = "connection reset", true
	case errors.As(err, &opErr):
		e.Reason, e.Temporary = opErr.Op+": "+opErr.Err.Error(), true
	default:
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		e.Reason, e.Temporary = err.Error(), true
	}
	return e
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// formatBytes writes n in decimal units: "20 MB", "512 kB", "100 B".
func formatBytes(n int64) string {
	switch {
	case n >= 1_000_000:
		return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64) + " MB"
	case n >= 1_000:
		return strconv.FormatFloat(float64(n)/1e3, 'f', -1, 64) + " kB"
	default:
		return strconv.FormatInt(n, 10) + " B"
	}
}

// hostLimiter bounds the requests per host.
type hostLimiter struct {
	limit int
	mu    sync.Mutex
	slots map[string]*hostSlots
}

// hostSlots are one host's request slots and the number of callers that
// hold or wait for one.
type hostSlots struct {
	sem   chan struct{}
	users int
}

// acquire takes a slot of host, waiting while all are taken, and returns
// the function that gives it back.
func (l *hostLimiter) acquire(ctx context.Context, host string) (func(), error) {
	l.mu.Lock()
	s, ok := l.slots[host]
	if !ok {
		s = &hostSlots{sem: make(chan struct{}, l.limit)}
		l.slots[host] = s
	}
	s.users++
	l.mu.Unlock()
	leave := func() {
		l.mu.Lock()
		if s.users--; s.users == 0 {
			delete(l.slots, host)
		}
		l.mu.Unlock()
	}
	select {
	case s.sem <- struct{}{}:
		return func() { <-s.sem; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}
