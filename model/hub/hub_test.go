package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testRepo = "Salesforce/blip2-opt-2.7b"

// checkSnapshot verifies the huggingface_hub layout for the wanted files:
// relative symlinks into blobs/<etag> with the right content.
func checkSnapshot(t *testing.T, h *fakeHub, cacheDir, dir string) {
	t.Helper()
	repoDir := filepath.Join(cacheDir, "models--Salesforce--blip2-opt-2.7b")
	if want := filepath.Join(repoDir, "snapshots", h.commit); dir != want {
		t.Fatalf("Resolve = %s, want %s", dir, want)
	}
	for _, name := range wantedFiles {
		path := filepath.Join(dir, name)
		target, err := os.Readlink(path)
		if err != nil {
			t.Errorf("%s: want a symlink: %v", name, err)
			continue
		}
		if want := "../../blobs/" + h.files[name].etag(); target != want {
			t.Errorf("%s links to %s, want %s", name, target, want)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if !bytes.Equal(got, h.files[name].data) {
			t.Errorf("%s: content differs from the Hub's", name)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(wantedFiles) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("snapshot holds %v, want exactly %v", names, wantedFiles)
	}
	blobs, err := filepath.Glob(filepath.Join(repoDir, "blobs", "*.incomplete"))
	if err != nil || len(blobs) != 0 {
		t.Errorf("left-over incomplete blobs: %v %v", blobs, err)
	}
}

func TestResolveFreshDownloadWritesHubLayoutThenWorksOffline(t *testing.T) {
	cacheDir := isolateEnv(t)
	h := newFakeHub(t)
	var progress bytes.Buffer
	opts := h.options()
	opts.Progress = &progress

	dir, err := Resolve(context.Background(), testRepo, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, h, cacheDir, dir)
	ref, err := os.ReadFile(filepath.Join(cacheDir, "models--Salesforce--blip2-opt-2.7b", "refs", "main"))
	if err != nil || string(ref) != h.commit {
		t.Errorf("refs/main = %q, %v; want %s", ref, err, h.commit)
	}
	for _, r := range h.seen() {
		for _, unwanted := range []string{".bin", ".h5", ".msgpack", "README.md", ".gitattributes"} {
			if strings.Contains(r.path, unwanted) {
				t.Errorf("requested %s %s, which is not needed", r.method, r.path)
			}
		}
	}
	if !strings.Contains(progress.String(), "model-00002-of-00002.safetensors") {
		t.Errorf("progress output lacks the shard name:\n%s", progress.String())
	}

	before := len(h.seen())
	again, err := Resolve(context.Background(), testRepo, h.options())
	if err != nil {
		t.Fatal(err)
	}
	if again != dir {
		t.Errorf("second Resolve = %s, want %s", again, dir)
	}
	if n := len(h.seen()) - before; n != 0 {
		t.Errorf("second Resolve made %d requests, want 0", n)
	}

	t.Setenv("HF_HUB_OFFLINE", "1")
	offline, err := Resolve(context.Background(), testRepo, Options{})
	if err != nil || offline != dir {
		t.Errorf("offline Resolve = %s, %v; want %s", offline, err, dir)
	}
}

func TestResolveRevisions(t *testing.T) {
	tests := []struct {
		name    string
		ref     string
		wantRef string // refs file written, empty for a commit hash
	}{
		{"tag", testRepo + "@v1.0", "v1.0"},
		{"commit hash", testRepo + "@51572668da0eb669e01a189dc22abe6088589a24", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cacheDir := isolateEnv(t)
			h := newFakeHub(t)
			dir, err := Resolve(context.Background(), tt.ref, h.options())
			if err != nil {
				t.Fatal(err)
			}
			checkSnapshot(t, h, cacheDir, dir)
			refs, _ := filepath.Glob(filepath.Join(cacheDir, "models--Salesforce--blip2-opt-2.7b", "refs", "*"))
			switch {
			case tt.wantRef == "" && len(refs) != 0:
				t.Errorf("refs written for a commit hash: %v", refs)
			case tt.wantRef != "" && (len(refs) != 1 || filepath.Base(refs[0]) != tt.wantRef):
				t.Errorf("refs = %v, want only %s", refs, tt.wantRef)
			}
			before := len(h.seen())
			if _, err := Resolve(context.Background(), tt.ref, h.options()); err != nil {
				t.Fatal(err)
			}
			if n := len(h.seen()) - before; n != 0 {
				t.Errorf("cached Resolve made %d requests, want 0", n)
			}
		})
	}
}

func TestResolveResumesCutDownload(t *testing.T) {
	cacheDir := isolateEnv(t)
	h := newFakeHub(t)
	const shard = "model-00002-of-00002.safetensors"
	h.cutAfter[shard] = 100000
	h.cutTimes = 1
	opts := h.options()
	opts.Attempts = 1

	_, err := Resolve(context.Background(), testRepo, opts)
	if err == nil || !strings.Contains(err.Error(), shard) {
		t.Fatalf("cut download: err = %v, want an error naming %s", err, shard)
	}
	incomplete := filepath.Join(cacheDir, "models--Salesforce--blip2-opt-2.7b", "blobs", h.files[shard].etag()+".incomplete")
	info, err := os.Stat(incomplete)
	if err != nil || info.Size() == 0 || info.Size() >= int64(len(h.files[shard].data)) {
		t.Fatalf("after the cut, %s: %v, %v; want a partial file", incomplete, info, err)
	}
	kept := info.Size()

	dir, err := Resolve(context.Background(), testRepo, opts)
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, h, cacheDir, dir)
	wantRange := fmt.Sprintf("bytes=%d-", kept)
	found := false
	for _, r := range h.seen() {
		found = found || (r.host == fakeCDNHost && r.rangeHeader == wantRange)
	}
	if !found {
		t.Errorf("no CDN request with Range %s; requests: %+v", wantRange, h.seen())
	}
}

func TestResolveRetriesDroppedConnectionsWithinOneCall(t *testing.T) {
	cacheDir := isolateEnv(t)
	h := newFakeHub(t)
	const shard = "model-00001-of-00002.safetensors"
	h.cutAfter[shard] = 60000
	h.cutTimes = 2
	dir, err := Resolve(context.Background(), testRepo, h.options())
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, h, cacheDir, dir)
	var ranges []string
	for _, r := range h.seen() {
		if r.rangeHeader != "" {
			ranges = append(ranges, r.rangeHeader)
		}
	}
	if len(ranges) < 2 {
		t.Errorf("Range requests %v, want one per resumed attempt", ranges)
	}
}

func TestResolveRestartsWhenServerIgnoresRange(t *testing.T) {
	cacheDir := isolateEnv(t)
	h := newFakeHub(t)
	const shard = "model-00002-of-00002.safetensors"
	h.cutAfter[shard] = 100000
	h.cutTimes = 1
	h.ignoreRange = true
	dir, err := Resolve(context.Background(), testRepo, h.options())
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, h, cacheDir, dir)
}

func TestResolveRejectsHashMismatch(t *testing.T) {
	cacheDir := isolateEnv(t)
	h := newFakeHub(t)
	const shard = "model-00001-of-00002.safetensors"
	h.corrupt[shard] = true
	_, err := Resolve(context.Background(), testRepo, h.options())
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), shard) {
		t.Fatalf("err = %v, want %v naming %s", err, ErrChecksum, shard)
	}
	blobs := filepath.Join(cacheDir, "models--Salesforce--blip2-opt-2.7b", "blobs")
	for _, path := range []string{filepath.Join(blobs, h.files[shard].etag()), filepath.Join(blobs, h.files[shard].etag()+".incomplete")} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s still exists after a hash mismatch", path)
		}
	}
}

func TestResolveOfflineWithoutCacheFails(t *testing.T) {
	isolateEnv(t)
	h := newFakeHub(t)
	t.Setenv("HF_HUB_OFFLINE", "1")
	_, err := Resolve(context.Background(), testRepo, h.options())
	if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") || !strings.Contains(err.Error(), testRepo) {
		t.Errorf("err = %v, want %v naming the model and HF_HUB_OFFLINE", err, ErrNotCached)
	}
	if n := len(h.seen()); n != 0 {
		t.Errorf("offline Resolve made %d requests", n)
	}
}

func TestResolveReturnsLocalFolderAsIs(t *testing.T) {
	isolateEnv(t)
	dir := t.TempDir()
	got, err := Resolve(context.Background(), dir, Options{Offline: true})
	if err != nil || got != dir {
		t.Errorf("Resolve(%s) = %s, %v", dir, got, err)
	}
	file := filepath.Join(dir, "config.json")
	if err := os.WriteFile(file, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Resolve(context.Background(), file, Options{Offline: true}); err == nil {
		t.Errorf("Resolve(%s) of a file succeeded", file)
	}
}

func TestResolveAcceptsPlainFilesInSnapshot(t *testing.T) {
	cacheDir := isolateEnv(t)
	h := newFakeHub(t)
	repoDir := filepath.Join(cacheDir, "models--Salesforce--blip2-opt-2.7b")
	snapshot := filepath.Join(repoDir, "snapshots", h.commit)
	if err := os.MkdirAll(snapshot, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range wantedFiles {
		if err := os.WriteFile(filepath.Join(snapshot, name), h.files[name].data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(repoDir, "refs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repoDir, "refs", "main"), []byte(h.commit+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := Resolve(context.Background(), testRepo, h.options())
	if err != nil || dir != snapshot {
		t.Errorf("Resolve = %s, %v; want %s", dir, err, snapshot)
	}
	if n := len(h.seen()); n != 0 {
		t.Errorf("Resolve of a complete plain-file snapshot made %d requests", n)
	}
}

func TestResolveCompletesPartialSnapshot(t *testing.T) {
	cacheDir := isolateEnv(t)
	h := newFakeHub(t)
	if _, err := Resolve(context.Background(), testRepo, h.options()); err != nil {
		t.Fatal(err)
	}
	snapshot := filepath.Join(cacheDir, "models--Salesforce--blip2-opt-2.7b", "snapshots", h.commit)
	const shard = "model-00002-of-00002.safetensors"
	if err := os.Remove(filepath.Join(snapshot, shard)); err != nil {
		t.Fatal(err)
	}
	before := len(h.seen())
	dir, err := Resolve(context.Background(), testRepo, h.options())
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, h, cacheDir, dir)
	for _, r := range h.seen()[before:] {
		if r.host == fakeCDNHost {
			t.Errorf("re-downloaded %s although its blob was cached", r.path)
		}
	}
}

func TestResolveSendsTokenOnlyToHub(t *testing.T) {
	for _, viaEnv := range []bool{false, true} {
		t.Run(fmt.Sprintf("env=%v", viaEnv), func(t *testing.T) {
			isolateEnv(t)
			h := newFakeHub(t)
			h.requireToken = "hf_secret"
			opts := h.options()
			if viaEnv {
				t.Setenv("HF_TOKEN", "hf_secret")
			} else {
				opts.Token = "hf_secret"
			}
			if _, err := Resolve(context.Background(), testRepo, opts); err != nil {
				t.Fatal(err)
			}
			cdnRequests := 0
			for _, r := range h.seen() {
				switch r.host {
				case fakeHubHost:
					if r.auth != "Bearer hf_secret" {
						t.Errorf("Hub request %s %s without the token", r.method, r.path)
					}
				case fakeCDNHost:
					cdnRequests++
					if r.auth != "" {
						t.Errorf("CDN request %s got Authorization %q", r.path, r.auth)
					}
				}
			}
			if cdnRequests == 0 {
				t.Error("no CDN request seen; the test proves nothing")
			}
		})
	}
}

func TestRedirectDropsAuthorizationAcrossHosts(t *testing.T) {
	h := newFakeHub(t)
	client := withAuthStripping(h.client())
	req, err := http.NewRequest(http.MethodGet, "http://"+fakeHubHost+"/"+testRepo+"/resolve/main/model-00001-of-00002.safetensors", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer hf_secret")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	seen := h.seen()
	if len(seen) != 2 || seen[1].host != fakeCDNHost {
		t.Fatalf("requests %+v, want the Hub then the CDN", seen)
	}
	if seen[0].auth == "" || seen[1].auth != "" {
		t.Errorf("Authorization: Hub %q, CDN %q; want it on the Hub only", seen[0].auth, seen[1].auth)
	}
}

func TestResolveHubErrors(t *testing.T) {
	tests := []struct {
		name     string
		ref      string
		setup    func(*fakeHub)
		attempts int
		want     error
		mention  []string
	}{
		{"gated without token", testRepo, func(h *fakeHub) { h.requireToken = "hf_secret" }, 3, ErrUnauthorized, []string{"HF_TOKEN", "gated", testRepo}},
		{"unknown repo", "Salesforce/no-such-model", nil, 3, ErrNotFound, []string{"Salesforce/no-such-model", "not found"}},
		{"unknown revision", testRepo + "@nope", nil, 3, ErrNotFound, []string{`revision "nope"`}},
		{"plain 404", testRepo, func(h *fakeHub) { h.apiStatus = http.StatusNotFound }, 3, ErrNotFound, []string{testRepo}},
		{"server errors outlast retries", testRepo, func(h *fakeHub) { h.apiFailures = 3 }, 3, nil, []string{"HTTP 503"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			h := newFakeHub(t)
			if tt.setup != nil {
				tt.setup(h)
			}
			opts := h.options()
			opts.Attempts = tt.attempts
			_, err := Resolve(context.Background(), tt.ref, opts)
			if err == nil {
				t.Fatal("Resolve succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			for _, m := range tt.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("err = %q, want it to mention %q", err, m)
				}
			}
		})
	}
}

func TestResolveRetriesServerErrors(t *testing.T) {
	cacheDir := isolateEnv(t)
	h := newFakeHub(t)
	h.apiFailures = 2
	dir, err := Resolve(context.Background(), testRepo, h.options())
	if err != nil {
		t.Fatal(err)
	}
	checkSnapshot(t, h, cacheDir, dir)
}

func TestResolveUnreachableEndpointNamesIt(t *testing.T) {
	isolateEnv(t)
	closed := httptest.NewServer(http.NotFoundHandler())
	endpoint := closed.URL
	closed.Close()
	_, err := Resolve(context.Background(), testRepo, Options{Endpoint: endpoint, Attempts: 2, RetryBackoff: time.Millisecond})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), endpoint) {
		t.Errorf("err = %v, want %v naming %s", err, ErrUnreachable, endpoint)
	}
}

func TestResolveRejectsBadRefs(t *testing.T) {
	isolateEnv(t)
	for _, ref := range []string{"no-slash", "./missing/dir", "a/b/c", "org/name@", "org/name@../x"} {
		if _, err := Resolve(context.Background(), ref, Options{Offline: true}); err == nil || errors.Is(err, ErrNotCached) {
			t.Errorf("Resolve(%q) err = %v, want a bad reference error", ref, err)
		}
	}
}

func TestResolveRetriesExpiredCDNSignature(t *testing.T) {
	tests := []struct {
		name      string
		forbidden int
		wantErr   bool
	}{
		{"renewed on retry", 1, false},
		{"always refused", 100, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cacheDir := isolateEnv(t)
			h := newFakeHub(t)
			h.cdnForbidden = tt.forbidden
			dir, err := Resolve(context.Background(), testRepo, h.options())
			if tt.wantErr {
				if err == nil || errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "HTTP 403") {
					t.Errorf("err = %v, want a file-server refusal that does not blame the token", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkSnapshot(t, h, cacheDir, dir)
		})
	}
}

// BenchmarkResolveDownload measures a fresh download of a sharded
// checkpoint from the local fake Hub: HTTP, disk writes and sha256.
func BenchmarkResolveDownload(b *testing.B) {
	isolateEnv(b)
	h := newFakeHub(b)
	const shard = "model-00002-of-00002.safetensors"
	big := make([]byte, 32<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	h.files[shard] = newFakeFile(big, true)
	b.SetBytes(int64(len(big)))
	for b.Loop() {
		b.StopTimer()
		opts := h.options()
		opts.CacheDir = b.TempDir()
		b.StartTimer()
		if _, err := Resolve(context.Background(), testRepo, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// A one-slash path beside an existing folder is a mistyped local path: it
// fails at once, saying so, without trying the Hub.
func TestResolveMistypedLocalPathFailsAtOnce(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "models"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	t.Setenv("HF_HUB_CACHE", filepath.Join(dir, "cache"))
	t.Setenv("HF_ENDPOINT", "http://127.0.0.1:1") // reaching it would fail otherwise
	_, err := Resolve(context.Background(), "models/opt-tiny", Options{})
	if err == nil || !strings.Contains(err.Error(), "no such folder") || !strings.Contains(err.Error(), "Hub") {
		t.Fatalf("error %v, want no such folder, mentioning the Hub reading", err)
	}
}
