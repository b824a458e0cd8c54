package integration

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestUnsafeManifestReadsNothing runs a job over a manifest that names
// files outside its folder (file://, an absolute path, another bucket),
// an unsupported scheme, and URLs of a server on loopback (directly, by a
// name that resolves to loopback, and through a redirect): each gets an
// error row with its reason, nothing is read (no size, no hash, no
// request reaches the server), and the one image under the manifest's
// folder gets its row. With --allow-private-addresses and
// --allow-local-paths the same rows are read.
func TestUnsafeManifestReadsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test; skipped with -short")
	}
	var hits atomic.Int32
	png := mustPNG(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/img.png", http.StatusFound)
			return
		}
		w.Write(png)
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]

	dir := t.TempDir()
	outside := filepath.Join(dir, "outside.png") // readable, but not under the manifest's folder
	for path, data := range map[string][]byte{filepath.Join(dir, "set", "good.png"): png, outside: png} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rows := map[string]string{ // key -> url, and the reason its row must give
		"passwd":    "file:///etc/passwd",
		"hostname":  "/etc/hostname",
		"outside":   outside,
		"bucket":    "s3://other-bucket/secret.png",
		"gopher":    "gopher://example.com/x.png",
		"loopback":  srv.URL + "/img.png",
		"localhost": "http://localhost:" + port + "/img.png",
		"redirect":  srv.URL + "/redirect",
		"good":      "good.png",
	}
	want := map[string]string{
		"passwd": "outside the manifest's folder", "hostname": "outside the manifest's folder",
		"outside": "outside the manifest's folder", "bucket": "outside the manifest's folder",
		"gopher":   "unsupported scheme",
		"loopback": "fetch: refused address 127.0.0.1 (loopback)", "localhost": "(loopback)",
		"redirect": "fetch: refused address 127.0.0.1 (loopback)", "good": "",
	}
	var csv strings.Builder
	csv.WriteString("key,url\n")
	for key, url := range rows {
		fmt.Fprintf(&csv, "%s,%s\n", key, url)
	}
	manifest := filepath.Join(dir, "set", "manifest.csv")
	if err := os.WriteFile(manifest, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	output := filepath.Join(dir, "out")
	runLocal(t, "--input", manifest, "--output", output, "--job", "unsafe", "--fetch-retries", "3")
	_, got := jobRows(t, output, "unsafe")
	for key, reason := range want {
		r, ok := got[key]
		switch {
		case !ok:
			t.Errorf("%s: no row", key)
		case reason == "" && r.Error != "":
			t.Errorf("%s: error %q", key, r.Error)
		case reason != "" && !strings.Contains(r.Error, reason):
			t.Errorf("%s (%s): error %q, want %q", key, rows[key], r.Error, reason)
		case reason != "" && (r.Size != 0 || r.SHA256 != ""):
			t.Errorf("%s: read %d bytes (sha256 %s)", key, r.Size, r.SHA256)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback server got %d requests", n)
	}

	// Explicitly allowed, the local rows and the server are reached.
	csv.Reset()
	csv.WriteString("key,url\n")
	for _, key := range []string{"outside", "loopback", "localhost", "redirect", "good"} {
		fmt.Fprintf(&csv, "%s,%s\n", key, rows[key])
	}
	manifest = filepath.Join(dir, "set", "allowed.csv")
	if err := os.WriteFile(manifest, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	allowed := filepath.Join(dir, "out-allowed")
	runLocal(t, "--input", manifest, "--output", allowed, "--job", "allowed", "--allow-local-paths", "--allow-private-addresses")
	_, got = jobRows(t, allowed, "allowed")
	for _, key := range []string{"outside", "loopback", "localhost", "redirect", "good"} {
		if r := got[key]; r.Error != "" || r.Size != int64(len(png)) {
			t.Errorf("allowed %s: error %q, size %d", key, r.Error, r.Size)
		}
	}
	if n := hits.Load(); n != 4 { // the redirect is two requests
		t.Errorf("the loopback server got %d requests with the flags, want 4", n)
	}

	// The report of a local manifest job reads its rows' own sources.
	out, err := exec.Command(binaries.coordinator, "report", "allowed", "--local", "--output", allowed,
		"--out", filepath.Join(dir, "report"), "--metrics-addr", "").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "5 thumbnails") {
		t.Errorf("report of a manifest job: %v\n%s", err, out)
	}
}
