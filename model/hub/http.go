package hub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

const userAgent = "blipflow-hub/1 (go)"

// defaultHTTPClient has connect, TLS and response-header timeouts but no
// overall one: large files take as long as they take, and stalls are
// caught by the download's own watchdog.
func defaultHTTPClient() *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	transport.TLSHandshakeTimeout = 15 * time.Second
	transport.ResponseHeaderTimeout = 60 * time.Second
	return &http.Client{Transport: transport}
}

// withAuthStripping returns a copy of client whose redirects drop the
// Authorization header whenever the host changes. Go's client keeps it for
// subdomains (huggingface.co to cdn-lfs.huggingface.co); the token must
// reach only the Hub itself.
func withAuthStripping(client *http.Client) *http.Client {
	c := *client
	next := client.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != via[0].URL.Host {
			req.Header.Del("Authorization")
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

// withoutRedirects returns a copy of client that hands back 3xx answers
// instead of following them.
func withoutRedirects(client *http.Client) *http.Client {
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// transientError marks a failure worth retrying: a 5xx or 429 answer, a
// timeout, a refused or dropped connection, a stalled body.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

// isTransient reports whether err is worth retrying.
func isTransient(err error) bool {
	var t transientError
	return errors.As(err, &t)
}

// HTTPError is a Hub answer with an unexpected status, explained for a user.
type HTTPError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// URL is the requested address.
	URL string
	// Code is the Hub's X-Error-Code header (RepoNotFound, RevisionNotFound,
	// EntryNotFound, GatedRepo), if any.
	Code string
	// Message is the Hub's X-Error-Message header, if any.
	Message string
	// Ref is the model being resolved.
	Ref Ref
	// File is the repository file requested, empty for the revision lookup.
	File string
	// TokenSet tells whether the request carried a token.
	TokenSet bool
	// offHub marks an answer from another host than the Hub (its CDN).
	offHub bool
}

// Error explains the failure and what the user can do about it.
func (e *HTTPError) Error() string {
	var b strings.Builder
	switch {
	case e.offHub:
		fmt.Fprintf(&b, "model %s file %s: download refused by the file server", e.Ref, e.File)
	case e.Code == "RepoNotFound" || (e.StatusCode == http.StatusNotFound && e.File == "" && e.Code == ""):
		fmt.Fprintf(&b, "model %s not found on the Hub", e.Ref.Repo)
		if !e.TokenSet {
			b.WriteString(" (if it is private, set HF_TOKEN to a token with read access)")
		}
	case e.Code == "RevisionNotFound":
		fmt.Fprintf(&b, "model %s has no revision %q", e.Ref.Repo, e.Ref.Revision)
	case e.StatusCode == http.StatusNotFound || e.Code == "EntryNotFound":
		fmt.Fprintf(&b, "model %s has no file %s", e.Ref, e.File)
	case e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden || e.Code == "GatedRepo":
		fmt.Fprintf(&b, "access to model %s denied", e.Ref.Repo)
		if e.TokenSet {
			b.WriteString(": the token in use has no access; accept the model's terms on its Hub page with that account, or set HF_TOKEN to another token")
		} else {
			b.WriteString(": the model is gated or private; accept its terms on its Hub page and set HF_TOKEN to a token with read access")
		}
	default:
		fmt.Fprintf(&b, "model %s", e.Ref)
		if e.File != "" {
			fmt.Fprintf(&b, " file %s", e.File)
		}
		b.WriteString(": unexpected answer")
	}
	fmt.Fprintf(&b, " (HTTP %d from %s", e.StatusCode, e.URL)
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	b.WriteString(")")
	return b.String()
}

// Unwrap maps the status onto the package's sentinel errors.
func (e *HTTPError) Unwrap() error {
	switch {
	case e.offHub:
		return nil
	case e.Code == "RepoNotFound" || e.Code == "RevisionNotFound" || e.Code == "EntryNotFound" || e.StatusCode == http.StatusNotFound:
		return ErrNotFound
	case e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden || e.Code == "GatedRepo":
		return ErrUnauthorized
	}
	return nil
}

// statusError turns an unexpected answer into an error, transient for 5xx,
// 429 and a CDN's 403. It drains and closes the body.
func (f *fetcher) statusError(resp *http.Response, file string) error {
	discardBody(resp.Body)
	err := &HTTPError{
		StatusCode: resp.StatusCode,
		URL:        resp.Request.URL.Redacted(),
		Code:       resp.Header.Get("X-Error-Code"),
		Message:    resp.Header.Get("X-Error-Message"),
		Ref:        f.ref,
		File:       file,
		TokenSet:   f.settings.token != "",
		offHub:     resp.Request.URL.Host != f.endpointHost,
	}
	// A CDN's 403 is most often an expired signed URL, which the next try,
	// starting again from the Hub, renews.
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || (err.offHub && resp.StatusCode == http.StatusForbidden) {
		return transientError{err}
	}
	return err
}

// newRequest builds a request with the Hub's headers; the token goes only
// to the endpoint's own host.
func (f *fetcher) newRequest(ctx context.Context, method, url string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, fmt.Errorf("model %s: request %s: %w", f.ref, url, err)
	}
	req.Header.Set("User-Agent", userAgent)
	// Sizes and hashes refer to the raw bytes, so no transparent gzip.
	req.Header.Set("Accept-Encoding", "identity")
	if f.settings.token != "" && req.URL.Host == f.endpointHost {
		req.Header.Set("Authorization", "Bearer "+f.settings.token)
	}
	return req, nil
}

// send performs req, marking network failures transient.
func send(client *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := client.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return nil, err
		}
		return nil, transientError{err}
	}
	return resp, nil
}

// retry runs attempt until it succeeds, fails for good, or the attempts
// run out, waiting with exponential backoff between tries.
func (f *fetcher) retry(ctx context.Context, attempt func() error) error {
	wait := f.settings.retryBackoff
	for try := 1; ; try++ {
		err := attempt()
		if err == nil || !isTransient(err) || try >= f.settings.attempts || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (while retrying after: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, maxRetryBackoff)
	}
}
