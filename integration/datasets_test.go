package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"blipflow/internal/s3test"
	"blipflow/pipeline/coordinator"
	"blipflow/pipeline/synth"
	"blipflow/schemas"
	"blipflow/storage"
)

// runLocal runs `coordinator run --local --model nop` with args and
// returns its output; the job must finish.
func runLocal(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args = append([]string{"run", "--local", "--model", "nop", "--task", "caption", "--progress=false",
		"--metrics-addr", "", "--log-format", "json"}, args...)
	out, err := exec.CommandContext(ctx, binaries.coordinator, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("coordinator %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// jobRows reads every output row of job, failing on a key seen twice.
func jobRows(t *testing.T, output, job string) (coordinator.Manifest, map[string]schemas.Row) {
	t.Helper()
	ctx := context.Background()
	out, err := storage.Open(ctx, output, storage.ConfigFromEnv())
	if err != nil {
		t.Fatal(err)
	}
	var m coordinator.Manifest
	data, err := out.Read(ctx, coordinator.ManifestKey(job))
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	rows := map[string]schemas.Row{}
	err = out.List(ctx, job+"/shards/", func(obj storage.Object) error {
		data, err := out.Read(ctx, obj.Key)
		if err != nil {
			return err
		}
		_, got, err := schemas.ReadRows(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return fmt.Errorf("%s: %w", obj.Key, err)
		}
		for _, r := range got {
			if _, dup := rows[r.Key]; dup {
				t.Errorf("%s: second row for %q", obj.Key, r.Key)
			}
			rows[r.Key] = r
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != len(rows) || m.Failed != 0 {
		t.Errorf("manifest: %d rows, %d failed shards; read %d rows", m.Rows, m.Failed, len(rows))
	}
	return m, rows
}

// TestManifestOfURLs runs a job over a CSV manifest of URLs served by a
// local server that answers some with 404s, slowly, with redirects,
// oversized bodies or errors that pass: every row comes out once, with its
// extra columns, the failed downloads as error rows with their reason.
func TestManifestOfURLs(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test; skipped with -short")
	}
	png, err := synth.PNG(7, 32, 24)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	flakyHits := map[string]int{}
	mux := http.NewServeMux()
	mux.HandleFunc("/img/", func(w http.ResponseWriter, r *http.Request) { w.Write(png) })
	mux.HandleFunc("/flaky/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		flakyHits[r.URL.Path]++
		n := flakyHits[r.URL.Path]
		mu.Unlock()
		if n == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write(png)
	})
	mux.HandleFunc("/moved/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/img/"+strings.TrimPrefix(r.URL.Path, "/moved/"), http.StatusMovedPermanently)
	})
	mux.HandleFunc("/slow/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/big/", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 300_000)) })
	mux.HandleFunc("/gone/", http.NotFound)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// key -> expected error ("" for an image).
	want := map[string]string{}
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	cw.Write([]string{"key", "url", "caption", "license"})
	add := func(key, path, wantErr string) {
		want[key] = wantErr
		url := path
		if !strings.HasPrefix(url, "http") {
			url = srv.URL + path
		}
		cw.Write([]string{key, url, "caption of " + key, "cc-by, " + key})
	}
	for i := range 40 {
		add(fmt.Sprintf("ok-%02d", i), fmt.Sprintf("/img/%d.png", i), "")
	}
	for i := range 4 {
		add(fmt.Sprintf("flaky-%d", i), fmt.Sprintf("/flaky/%d", i), "")
		add(fmt.Sprintf("moved-%d", i), fmt.Sprintf("/moved/%d.png", i), "")
	}
	add("gone", "/gone/x.jpg", "fetch: http 404")
	add("slow", "/slow/x.jpg", "fetch: timeout after 400ms")
	add("big", "/big/x.jpg", "fetch: too large (>200 kB)")
	add("nohost", "http://127.0.0.1:1/x.jpg", "fetch: connect: connection refused")
	cw.Flush()
	dir := t.TempDir()
	manifest := filepath.Join(dir, "manifest.csv")
	if err := os.WriteFile(manifest, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	output := filepath.Join(dir, "out")
	runLocal(t, "--allow-private-addresses", "--input", manifest, "--output", output, "--job", "urls", "--shard-size", "10", "--workers", "2",
		"--fetch-timeout", "400ms", "--fetch-retries", "1", "--fetch-max-bytes", "200000", "--fetch-per-host", "4")
	m, rows := jobRows(t, output, "urls")
	if m.Input != manifest || m.Shards != (len(want)+9)/10 {
		t.Errorf("manifest input %q, %d shards", m.Input, m.Shards)
	}
	errorRows := 0
	for key, wantErr := range want {
		r, ok := rows[key]
		switch {
		case !ok:
			t.Errorf("%s: no row", key)
			continue
		case r.Error != wantErr:
			t.Errorf("%s: error %q, want %q", key, r.Error, wantErr)
		case wantErr == "" && (len(r.Captions) != 1 || r.Width != 32 || r.SHA256 == ""):
			t.Errorf("%s: captions %q, width %d", key, r.Captions, r.Width)
		}
		if wantErr != "" {
			errorRows++
		}
		if r.Extra["caption"] != "caption of "+key || r.Extra["license"] != "cc-by, "+key || len(r.Extra) != 2 {
			t.Errorf("%s: extra %v", key, r.Extra)
		}
		if !strings.HasPrefix(r.Source, "http://") {
			t.Errorf("%s: source %q", key, r.Source)
		}
	}
	if len(rows) != len(want) || m.ErrorRows != errorRows {
		t.Errorf("%d rows (%d errors), want %d (%d)", len(rows), m.ErrorRows, len(want), errorRows)
	}
}

// wdsSample is one generated WebDataset sample.
type wdsSample struct {
	key, caption string
	image        bool
}

// writeTars writes n tars of per samples each (the last sample of the
// first tar has no image) into store under prefix, and returns the samples.
func writeTars(t *testing.T, store storage.Store, prefix string, n, per int) []wdsSample {
	t.Helper()
	var all []wdsSample
	for s := range n {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		put := func(name string, data []byte) {
			if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
				t.Fatal(err)
			}
			tw.Write(data)
		}
		for i := range per {
			sample := wdsSample{key: fmt.Sprintf("part%d/%03d%04d", s%2, s, i), caption: fmt.Sprintf("sample %d of tar %d", i, s), image: s != 0 || i != per-1}
			if sample.image {
				png, err := synth.PNG(s*1000+i, 16+i%3, 16)
				if err != nil {
					t.Fatal(err)
				}
				put(sample.key+".png", png)
			}
			put(sample.key+".txt", []byte(sample.caption))
			put(sample.key+".json", []byte(fmt.Sprintf(`{"i":%d}`, i)))
			all = append(all, sample)
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := store.Write(context.Background(), fmt.Sprintf("%s/%03d.tar", prefix, s), buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	return all
}

// checkSamples checks that every sample has exactly one row keyed by its
// sample key, with its text members in extra.
func checkSamples(t *testing.T, samples []wdsSample, rows map[string]schemas.Row) {
	t.Helper()
	if len(rows) != len(samples) {
		t.Errorf("%d rows for %d samples", len(rows), len(samples))
	}
	for _, s := range samples {
		r, ok := rows[s.key]
		switch {
		case !ok:
			t.Errorf("%s: no row", s.key)
			continue
		case !s.image && r.Error != "read: sample has no image member":
			t.Errorf("%s: imageless sample has error %q", s.key, r.Error)
		case s.image && (r.Error != "" || len(r.Captions) != 1 || r.Width < 16):
			t.Errorf("%s: error %q captions %q width %d", s.key, r.Error, r.Captions, r.Width)
		}
		if r.Extra["txt"] != s.caption || !strings.HasPrefix(r.Extra["json"], `{"i":`) {
			t.Errorf("%s: extra %v", s.key, r.Extra)
		}
		if !strings.Contains(r.Source, ".tar#"+s.key) {
			t.Errorf("%s: source %q", s.key, r.Source)
		}
	}
}

// TestWebDatasetTars runs jobs over generated WebDataset tars named by a
// brace pattern, in a local folder and in S3.
func TestWebDatasetTars(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test; skipped with -short")
	}
	dir := t.TempDir()
	local, err := storage.Open(context.Background(), filepath.Join(dir, "wds"), storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	samples := writeTars(t, local, "shards", 3, 25)
	output := filepath.Join(dir, "out")
	runLocal(t, "--input", filepath.Join(dir, "wds", "shards", "{000..002}.tar"), "--output", output, "--job", "wds-local")
	m, rows := jobRows(t, output, "wds-local")
	if m.Shards != 3 || m.ErrorRows != 1 {
		t.Errorf("manifest: %d shards, %d error rows; want 3 and 1", m.Shards, m.ErrorRows)
	}
	for _, f := range m.Files {
		if !strings.HasPrefix(f.Shard, "00") || f.Rows != 25 {
			t.Errorf("shard file %+v: want one per tar, named after it, with 25 rows", f)
		}
	}
	checkSamples(t, samples, rows)
	// The report of a tar job reads thumbnails from the tars.
	out, err := exec.Command(binaries.coordinator, "report", "wds-local", "--local", "--output", output,
		"--out", filepath.Join(dir, "report"), "--sample", "4", "--metrics-addr", "").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "4 thumbnails") {
		t.Errorf("report of a tar job: %v\n%s", err, out)
	}

	s3 := s3test.Start(t)
	bucket, err := storage.Open(context.Background(), s3.URL(""), storage.ConfigFromEnv())
	if err != nil {
		t.Fatal(err)
	}
	samples = writeTars(t, bucket, "data", 2, 30)
	runLocal(t, "--input", s3.URL("data/{000..001}.tar"), "--output", s3.URL("out"), "--job", "wds-s3",
		"--store-dir", filepath.Join(dir, "nats-s3"))
	m, rows = jobRows(t, s3.URL("out"), "wds-s3")
	if m.Shards != 2 || m.Rows != 60 {
		t.Errorf("S3 manifest: %d shards, %d rows; want 2 and 60", m.Shards, m.Rows)
	}
	checkSamples(t, samples, rows)
}

// TestRetryManifestOfURLs retries the failed downloads of a URL manifest
// once the server answers them: the retry reads each image from its URL
// and keeps its extra columns, and every row comes out once.
func TestRetryManifestOfURLs(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test; skipped with -short")
	}
	png, err := synth.PNG(3, 32, 24)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	down := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fail := down && strings.HasPrefix(r.URL.Path, "/later/")
		mu.Unlock()
		if fail {
			http.NotFound(w, r)
			return
		}
		w.Write(png)
	}))
	defer srv.Close()
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	cw.Write([]string{"key", "url", "license"})
	for i := range 12 {
		dir := "now"
		if i%4 == 0 {
			dir = "later"
		}
		cw.Write([]string{fmt.Sprintf("k%02d", i), fmt.Sprintf("%s/%s/%d.png", srv.URL, dir, i), fmt.Sprint("lic-", i)})
	}
	cw.Flush()
	dir := t.TempDir()
	manifest := filepath.Join(dir, "m.csv")
	if err := os.WriteFile(manifest, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	output := filepath.Join(dir, "out")
	runLocal(t, "--allow-private-addresses", "--input", manifest, "--output", output, "--job", "later", "--shard-size", "5", "--fetch-retries", "0")
	if m, _ := jobRows(t, output, "later"); m.ErrorRows != 3 {
		t.Fatalf("first run: %d error rows, want 3", m.ErrorRows)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binaries.coordinator, "retry", "later", "--local", "--model", "nop",
		"--output", output, "--metrics-addr", "", "--progress=false").CombinedOutput()
	if err != nil {
		t.Fatalf("retry: %v\n%s", err, out)
	}
	m, rows := jobRows(t, output, "later")
	if m.ErrorRows != 0 || len(rows) != 12 {
		t.Fatalf("after retry: %d rows, %d errors\n%s", len(rows), m.ErrorRows, out)
	}
	for i := range 12 {
		r := rows[fmt.Sprintf("k%02d", i)]
		if r.Error != "" || len(r.Captions) != 1 || r.Extra["license"] != fmt.Sprint("lic-", i) || !strings.HasPrefix(r.Source, srv.URL) {
			t.Errorf("k%02d: error %q captions %q extra %v source %q", i, r.Error, r.Captions, r.Extra, r.Source)
		}
	}
}

// TestRetryWebDataset dead-letters one tar's shard (its model run always
// fails), then retries it: the retry reads each sample from the tar
// ("tar#member") with its text members, and every sample comes out once.
func TestRetryWebDataset(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test; skipped with -short")
	}
	dir := t.TempDir()
	local, err := storage.Open(context.Background(), filepath.Join(dir, "wds"), storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	samples := writeTars(t, local, "shards", 3, 10)
	output := filepath.Join(dir, "out")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	coordinator := func(args ...string) (string, error) {
		args = append(args, "--local", "--output", output, "--metrics-addr", "", "--progress=false")
		out, err := exec.CommandContext(ctx, binaries.coordinator, args...).CombinedOutput()
		return string(out), err
	}
	out, err := coordinator("run", "--input", filepath.Join(dir, "wds", "shards", "{000..002}.tar"), "--job", "wds-retry",
		"--model", "nop:failbatch=part0/002", "--task", "caption", "--max-deliver", "1")
	if err == nil {
		t.Fatalf("first run: no dead-lettered shard\n%s", out)
	}
	if out, err := coordinator("retry", "wds-retry", "--model", "nop"); err != nil {
		t.Fatalf("retry: %v\n%s", err, out)
	}
	m, rows := jobRows(t, output, "wds-retry")
	if m.Failed != 0 || m.Rows != 30 {
		t.Errorf("after retry: %d failed shards, %d rows; want 0 and 30", m.Failed, m.Rows)
	}
	checkSamples(t, samples, rows)
}
