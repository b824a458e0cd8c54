package report

import (
	"archive/tar"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/synth"
	"blipflow/pipeline/worker"
	"blipflow/schemas"
	"blipflow/storage"
)

// TestWriteReport writes a report for a job of two shards (one with an
// error and a duplicate, one dead-lettered) and checks its numbers, files
// and page.
func TestWriteReport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	in, err := storage.Open(ctx, filepath.Join(dir, "in"), storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := storage.Open(ctx, filepath.Join(dir, "out"), storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.Write(ctx, in, 4, 40, 20); err != nil {
		t.Fatal(err)
	}
	rows := []schemas.Row{
		{Key: synth.Key(0), Captions: []string{"a <b>red</b> square"}},
		{Key: synth.Key(1), Captions: []string{"a blue square"}},
		{Key: synth.Key(2), Captions: []string{"a green square"}},
		{Key: synth.Key(3), Extra: map[string]string{worker.ExtraDuplicateOf: synth.Key(0)}},
		{Key: "bad/x.png", Error: "decode: imageproc: decode \"bad/x.png\": unknown image format"},
		{Key: "bad/y.png", Error: "decode: imageproc: decode \"bad/y.png\": unknown image format"},
	}
	var buf bytes.Buffer
	if err := schemas.WriteRows(&buf, schemas.Meta{Model: "nop", Task: "caption"}, rows); err != nil {
		t.Fatal(err)
	}
	if err := out.Write(ctx, "job/shards/a.parquet", buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := Config{
		Spec: jobstate.Spec{ID: "job", Input: in.URL(), Output: out.URL(), Task: "caption", Shards: 2, Images: 9,
			Published: true, Finished: true, CreatedAt: created},
		States: map[string]jobstate.ShardState{
			"a": {State: jobstate.StateDone, File: "job/shards/a.parquet", Rows: 6, ErrorRows: 2, Duplicates: 1, Model: "nop", UpdatedAt: created.Add(3 * time.Second)},
			"b": {State: jobstate.StateFailed, Images: 3, Reason: "model: boom", UpdatedAt: created.Add(4 * time.Second)},
		},
		Output: out, Input: in, Dir: filepath.Join(dir, "report"), Sample: 10,
	}
	s, err := Write(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.Rows != 6 || s.OK != 3 || s.Errors != 2 || s.Duplicates != 1 || s.Done != 1 || s.Failed != 1 ||
		s.Thumbnails != 3 || s.Duration != 3*time.Second || len(s.Models) != 1 {
		t.Errorf("summary %+v", s)
	}
	page, err := os.ReadFile(s.Page)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, want := range []string{
		"a &lt;b&gt;red&lt;/b&gt; square", // captions are escaped
		`src="thumbs/0000.jpg"`, "unknown image format", "<svg class=\"chart\"", "model: boom",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, banned := range []string{"http://", "https://", "<b>red"} {
		if strings.Contains(html, banned) {
			t.Errorf("page contains %q", banned)
		}
	}
	if n := strings.Count(html, `<td class="num">2</td>`); n < 1 {
		t.Error("the two decode errors are not grouped into one reason")
	}
	thumbs, _ := filepath.Glob(filepath.Join(cfg.Dir, ThumbDir, "*.jpg"))
	if len(thumbs) != 3 {
		t.Errorf("thumbnails %v", thumbs)
	}
}

func TestSplitError(t *testing.T) {
	tests := []struct{ msg, key, stage, reason string }{
		{`decode: imageproc: decode "a/b.png": unexpected EOF`, "a/b.png", "decode", `imageproc: decode "…": unexpected EOF`},
		{"read: open a.png: no such file", "a.png", "read", "open …: no such file"},
		{"weird", "k", "other", "weird"},
	}
	for _, tt := range tests {
		stage, reason := splitError(tt.msg, tt.key)
		if stage != tt.stage || reason != tt.reason {
			t.Errorf("splitError(%q) = %q, %q; want %q, %q", tt.msg, stage, reason, tt.stage, tt.reason)
		}
	}
}

func TestNiceCeilAndFormats(t *testing.T) {
	for v, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 3: 5, 7: 10, 36: 50, 450: 500, 1001: 2000} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
	for d, want := range map[time.Duration]string{360 * time.Millisecond: "0.36s", 12 * time.Second: "12s", 185 * time.Second: "3m05s", 2*time.Hour + 7*time.Minute: "2h07m"} {
		if got := formatOffset(d); got != want {
			t.Errorf("formatOffset(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestFitKeepsAspect(t *testing.T) {
	data, err := synth.PNG(1, 40, 20)
	if err != nil {
		t.Fatal(err)
	}
	th := newThumbnailer(100)
	dir := t.TempDir()
	in, err := storage.Open(context.Background(), dir, storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Write(context.Background(), "a.png", data); err != nil {
		t.Fatal(err)
	}
	src, err := readSource(context.Background(), Config{Input: in}, "a.png", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := th.write("a.png", src, filepath.Join(dir, "a.jpg")); err != nil {
		t.Fatal(err)
	}
	img, err := th.proc.DecodeBytes("a.jpg", mustRead(t, filepath.Join(dir, "a.jpg")))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 100 || b.Dy() != 50 {
		t.Errorf("thumbnail %v, want 100x50", b)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestReadSource reads thumbnails' images from each kind of source: the
// job's input, a URL, an absolute location and a WebDataset tar member.
func TestReadSource(t *testing.T) {
	ctx := context.Background()
	data, err := synth.PNG(2, 8, 8)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, err := storage.Open(ctx, dir, storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	in.Write(ctx, "x/a.png", data)
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, m := range []struct {
		name string
		body []byte
	}{{"s1.txt", []byte("hi")}, {"s1.png", data}, {"s2.png", []byte("other")}} {
		tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.body))})
		tw.Write(m.body)
	}
	tw.Close()
	in.Write(ctx, "shards/000.tar", tarBuf.Bytes())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	defer srv.Close()
	for _, c := range []struct{ key, source string }{
		{"x/a.png", ""},
		{"u", srv.URL + "/a.png"},
		{"abs", filepath.Join(dir, "x", "a.png")},
		{"s1", filepath.Join(dir, "shards", "000.tar") + "#s1.png"},
	} {
		got, err := readSource(ctx, Config{Input: in, Spec: jobstate.Spec{AllowPrivateAddresses: true}}, c.key, c.source)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("readSource(%q, %q) = %d bytes, %v", c.key, c.source, len(got), err)
		}
	}
	if _, err := readSource(ctx, Config{Input: in}, "s9", filepath.Join(dir, "shards", "000.tar")+"#s9.png"); err == nil {
		t.Error("missing tar member read")
	}
}
