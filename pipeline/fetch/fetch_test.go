package fetch

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fast are settings that keep retries quick.
var fast = Config{Timeout: 300 * time.Millisecond, Retries: 2, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxBytes: 1000, AllowPrivate: true}

func TestFetch(t *testing.T) {
	var flaky atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("image")) })
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	mux.HandleFunc("/flaky", func(w http.ResponseWriter, r *http.Request) {
		if flaky.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusBadGateway)
			return
		}
		w.Write([]byte("recovered"))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 2000)) })
	mux.HandleFunc("/big-streamed", func(w http.ResponseWriter, r *http.Request) {
		for range 4 { // chunked: no Content-Length
			w.Write(make([]byte, 400))
			w.(http.Flusher).Flush()
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	f := New(fast)

	tests := []struct {
		path     string
		want     string // body, or the error reason
		attempts int    // requests made for a failure
	}{
		{"/ok", "image", 0},
		{"/redirect", "image", 0},
		{"/flaky", "recovered", 0},
		{"/missing", "http 404", 1},
		{"/down", "http 503", 3},
		{"/slow", "timeout after 300ms", 3},
		{"/loop", "too many redirects (>5)", 1},
		{"/big", "too large (>1 kB)", 1},
		{"/big-streamed", "too large (>1 kB)", 1},
	}
	for _, tt := range tests {
		data, err := f.Fetch(context.Background(), srv.URL+tt.path)
		if tt.attempts == 0 {
			if err != nil || string(data) != tt.want {
				t.Errorf("%s: %q, %v; want %q", tt.path, data, err, tt.want)
			}
			continue
		}
		var ferr *Error
		if !errors.As(err, &ferr) || ferr.Error() != tt.want || ferr.Attempts != tt.attempts {
			t.Errorf("%s: error %v (%+v); want %q after %d attempts", tt.path, err, ferr, tt.want, tt.attempts)
		}
	}
}

func TestFetchConnectionErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/x.jpg"
	ln.Close()
	dnsFail := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
	}}
	tests := []struct {
		name, url string
		cfg       Config
		want      string
		attempts  int
	}{
		{"refused", closed, fast, "connect: connection refused", 3},
		{"dns", "http://no-such-host.invalid/a.jpg", withTransport(fast, dnsFail), "dns: no such host", 1},
		{"bad scheme", "ftp://example.com/a.jpg", fast, `unsupported scheme "ftp" (want http or https)`, 0},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg).Fetch(context.Background(), tt.url)
		var ferr *Error
		if !errors.As(err, &ferr) || ferr.Reason != tt.want || ferr.Attempts != tt.attempts {
			t.Errorf("%s: %v (%+v); want %q after %d attempts", tt.name, err, ferr, tt.want, tt.attempts)
		}
	}
}

func withTransport(c Config, rt http.RoundTripper) Config {
	c.Transport = rt
	return c
}

// TestPerHostLimit checks that no more than PerHost requests reach one
// host at once, while another host is not held up.
func TestPerHostLimit(t *testing.T) {
	var mu sync.Mutex
	current, peak := map[string]int{}, map[string]int{}
	release := make(chan struct{})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		current[r.Host]++
		peak[r.Host] = max(peak[r.Host], current[r.Host])
		mu.Unlock()
		<-release
		mu.Lock()
		current[r.Host]--
		mu.Unlock()
		w.Write([]byte("ok"))
	})
	a, b := httptest.NewServer(handler), httptest.NewServer(handler)
	defer a.Close()
	defer b.Close()
	f := New(Config{PerHost: 2, Timeout: 10 * time.Second, AllowPrivate: true})
	var wg sync.WaitGroup
	for i := range 8 {
		for _, srv := range []*httptest.Server{a, b} {
			wg.Go(func() {
				if _, err := f.Fetch(context.Background(), srv.URL+"/"+strconv.Itoa(i)); err != nil {
					t.Error(err)
				}
			})
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		both := current[strings.TrimPrefix(a.URL, "http://")] == 2 && current[strings.TrimPrefix(b.URL, "http://")] == 2
		mu.Unlock()
		if both || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	for host, n := range peak {
		if n != 2 {
			t.Errorf("%s: %d requests at once, want 2", host, n)
		}
	}
	if len(f.hosts.slots) != 0 {
		t.Errorf("%d hosts still tracked after all requests ended", len(f.hosts.slots))
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{20_000_000: "20 MB", 1_500_000: "1.5 MB", 1000: "1 kB", 999: "999 B"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
