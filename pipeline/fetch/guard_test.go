package fetch

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestRefusedIP(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "10.1.2.3": true, "172.16.0.1": true, "192.168.1.1": true,
		"169.254.169.254": true, "fe80::1": true, "fd00::1": true, "100.64.0.1": true, "0.0.0.0": true,
		"::ffff:127.0.0.1": true, "224.0.0.1": true,
		"8.8.8.8": false, "1.1.1.1": false, "2606:4700:4700::1111": false,
	} {
		if _, got := refusedIP(netip.MustParseAddr(addr)); got != want {
			t.Errorf("refusedIP(%s) = %v, want %v", addr, got, want)
		}
	}
}

// A safe fetcher refuses loopback servers, directly, through a name that
// resolves to loopback and through redirects, never retries the refusal,
// and never reaches the server; unsupported schemes are refused without a
// request.
func TestSafeFetcherRefuses(t *testing.T) {
	var hits atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte("secret"))
	}))
	defer internal.Close()
	f := New(Config{Timeout: 2 * time.Second, Retries: 3, Backoff: time.Millisecond, MaxBackoff: time.Millisecond})
	port := internal.URL[strings.LastIndex(internal.URL, ":"):]
	cases := map[string]string{
		internal.URL + "/x.png":              "refused address 127.0.0.1 (loopback)",
		"http://localhost" + port + "/x.png": "(loopback)",
		"file:///etc/passwd":                 `unsupported scheme "file"`,
		"ftp://example.com/x.png":            `unsupported scheme "ftp"`,
	}
	for u, want := range cases {
		_, err := f.Fetch(context.Background(), u)
		var ferr *Error
		if !errors.As(err, &ferr) || !strings.Contains(ferr.Reason, want) || ferr.Temporary {
			t.Errorf("%s: %v, want a permanent error containing %q", u, err, want)
			continue
		}
		if ferr.Attempts > 1 {
			t.Errorf("%s: %d attempts; a refusal is not retried", u, ferr.Attempts)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the internal server got %d requests", n)
	}

	// Redirects: to loopback (checked on the connection) and to file://.
	open := New(Config{Timeout: 2 * time.Second, AllowPrivate: true})
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := internal.URL + "/x.png"
		if r.URL.Path == "/file" {
			target = "file:///etc/passwd"
		}
		http.Redirect(w, r, target, http.StatusFound)
	}))
	defer redirector.Close()
	// The redirector is loopback too, so only an open fetcher reaches it;
	// to check the redirect hop alone, dial checks run on the open
	// fetcher's transport with the guard.
	guarded := New(Config{Timeout: 2 * time.Second, Transport: guardedTransportExcept(redirector.Listener.Addr().String())})
	for path, want := range map[string]string{"/loop": "(loopback)", "/file": `unsupported scheme "file"`} {
		_, err := guarded.Fetch(context.Background(), redirector.URL+path)
		var ferr *Error
		if !errors.As(err, &ferr) || !strings.Contains(ferr.Reason, want) || ferr.Temporary {
			t.Errorf("redirect %s: %v, want a permanent error containing %q", path, err, want)
		}
	}
	if _, err := open.Fetch(context.Background(), internal.URL+"/x.png"); err != nil {
		t.Errorf("AllowPrivate: %v", err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the internal server got %d requests, want 1 (the allowed one)", n)
	}
}

// guardedTransportExcept dials like a safe Fetcher but lets the test's own
// redirecting server through, so the redirect hop meets the guard.
func guardedTransportExcept(allowed string) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		if address == allowed {
			return nil
		}
		return checkDial(network, address, c)
	}}
	t.DialContext = dialer.DialContext
	t.Proxy = nil
	return t
}
