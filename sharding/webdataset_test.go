package sharding

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// tarOf builds a tar of name/content pairs, in order.
func tarOf(t *testing.T, members ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "dir/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(members); i += 2 {
		data := []byte(members[i+1])
		if err := tw.WriteHeader(&tar.Header{Name: members[i], Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadWebDataset(t *testing.T) {
	long := strings.Repeat("é", 20) // 40 bytes
	data := tarOf(t,
		"dir/000001.jpg", "JPEG1",
		"dir/000001.txt", "a cat",
		"dir/000001.json", `{"w":1}`,
		"dir/000001.seg.png", "second image",
		"dir/000002.txt", long,
		"dir/000002.cls", "3",
		"dir/000002.PNG", "PNG2",
		"dir/000002.npy", "\x93NUMPY\xff\xfe",
		"dir/.hidden.txt", "skipped",
		"dir/noext", "skipped",
		"dir/000003.txt", "no image",
	)
	var got []Sample
	err := ReadWebDataset(bytes.NewReader(data), TarOptions{MaxExtraBytes: 9}, func(s Sample) error {
		got = append(got, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Sample{
		{Key: "dir/000001", ImageMember: "dir/000001.jpg", Image: []byte("JPEG1"), Extra: map[string]string{"txt": "a cat", "json": `{"w":1}`}},
		{Key: "dir/000002", ImageMember: "dir/000002.PNG", Image: []byte("PNG2"), Extra: map[string]string{"txt": "éééé", "cls": "3"}},
		{Key: "dir/000003", Extra: map[string]string{"txt": "no image"}},
	}
	if len(got) != len(want) {
		t.Fatalf("%d samples %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Key != w.Key || g.ImageMember != w.ImageMember || !bytes.Equal(g.Image, w.Image) || !mapsEqual(g.Extra, w.Extra) {
			t.Errorf("sample %d: %+v, want %+v", i, g, w)
		}
	}

	// Skipping images reads their names but not their bytes; skipping
	// extras leaves Extra nil.
	err = ReadWebDataset(bytes.NewReader(data), TarOptions{SkipImages: true, SkipExtras: true}, func(s Sample) error {
		if s.Image != nil || s.Extra != nil {
			t.Errorf("skipped sample %+v", s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	split := tarOf(t, "a.jpg", "1", "b.jpg", "2", "a.txt", "late")
	if err := ReadWebDataset(bytes.NewReader(split), TarOptions{}, func(Sample) error { return nil }); err == nil || !strings.Contains(err.Error(), "appears again") {
		t.Errorf("non-adjacent members: %v", err)
	}
	stop := errors.New("stop")
	if err := ReadWebDataset(bytes.NewReader(data), TarOptions{}, func(Sample) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error: %v", err)
	}
	if err := ReadWebDataset(bytes.NewReader(data[:700]), TarOptions{}, func(Sample) error { return nil }); err == nil {
		t.Error("truncated tar: no error")
	}
}

func mapsEqual(a, b map[string]string) bool {
	return len(a) == len(b) && itemsEqual(Item{Extra: a}, Item{Extra: b})
}

func TestSplitMemberName(t *testing.T) {
	tests := []struct{ name, key, ext string }{
		{"dir/000123.jpg", "dir/000123", "jpg"},
		{"a.b/c.seg.png", "a.b/c", "seg.png"},
		{"x.tar.gz", "x", "tar.gz"},
	}
	for _, tt := range tests {
		key, ext, ok := SplitMemberName(tt.name)
		if !ok || key != tt.key || ext != tt.ext {
			t.Errorf("SplitMemberName(%q) = %q, %q, %v", tt.name, key, ext, ok)
		}
	}
	for _, bad := range []string{"noext", ".hidden", "dir/x."} {
		if _, _, ok := SplitMemberName(bad); ok {
			t.Errorf("SplitMemberName(%q) ok", bad)
		}
	}
}

func TestWebDatasetInput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := openLocal(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"train/000.tar", "train/001.tar", "train/002.tar", "val/000.tar", "train/notes.txt"} {
		if err := store.Write(ctx, name, tarOf(t, "k.jpg", "x")); err != nil {
			t.Fatal(err)
		}
	}
	list := func(pattern string) ([]Shard, error) {
		in, err := OpenInput(ctx, pattern, InputOptions{}, openLocal)
		if err != nil {
			return nil, err
		}
		items, err := Collect(ctx, in, Filter{})
		if err != nil {
			return nil, err
		}
		return PlanInput(in, items, 100)
	}
	shards, err := list(filepath.Join(dir, "{train/{000..001},val/000}.tar"))
	if err != nil {
		t.Fatal(err)
	}
	idPattern := regexp.MustCompile(`^(train|val)_00[01]-[0-9a-f]{8}$`)
	var archives []string
	for _, s := range shards {
		archives = append(archives, strings.TrimPrefix(s.Archive, dir+"/"))
		if !idPattern.MatchString(s.ID) || len(s.Keys) != 0 {
			t.Errorf("shard %+v", s)
		}
	}
	if want := []string{"train/000.tar", "train/001.tar", "val/000.tar"}; !slices.Equal(archives, want) {
		t.Errorf("archives %q, want %q", archives, want)
	}
	if KnownImages(shards) != 0 {
		t.Errorf("tar shards claim %d known images", KnownImages(shards))
	}
	again, _ := list(filepath.Join(dir, "{val/000,train/{001..000}}.tar"))
	if !slices.EqualFunc(shards, again, func(a, b Shard) bool { return a.ID == b.ID && a.Archive == b.Archive }) {
		t.Errorf("same tars in another order gave other shards: %+v", again)
	}

	single, err := list(filepath.Join(dir, "train/001.tar"))
	if err != nil || len(single) != 1 || !strings.HasPrefix(single[0].ID, "001-") {
		t.Errorf("single tar: %+v, %v", single, err)
	}
	folder, err := OpenInput(ctx, filepath.Join(dir, "train"), InputOptions{Format: FormatWebDataset}, openLocal)
	if err != nil {
		t.Fatal(err)
	}
	items, err := Collect(ctx, folder, Filter{})
	if err != nil || len(items) != 3 {
		t.Errorf("folder of tars: %+v, %v", items, err)
	}
	if _, err := list(filepath.Join(dir, "train/{000..003}.tar")); err == nil || !strings.Contains(err.Error(), "003.tar") {
		t.Errorf("missing tar: %v", err)
	}
}

// TestReadWebDatasetLimitsAndTruncation checks that an image member over
// the size cap is an error sample read no further, and that a tar cut
// inside a member delivers the samples before it, the cut one with its
// reason, and ErrTruncated.
func TestReadWebDatasetLimitsAndTruncation(t *testing.T) {
	data := tarOf(t, "a.png", "small", "b.png", strings.Repeat("x", 100), "b.txt", "kept", "c.png", "ok")
	var got []Sample
	err := ReadWebDataset(bytes.NewReader(data), TarOptions{MaxMemberBytes: 50}, func(s Sample) error {
		got = append(got, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].Image != nil || !strings.Contains(got[1].Err, "100 bytes, over the 50-byte member limit") ||
		got[1].Extra["txt"] != "kept" || string(got[2].Image) != "ok" || got[0].Err != "" {
		t.Fatalf("samples %+v", got)
	}

	// Cut inside b.png's bytes: a.png is whole, b.png is an error.
	cut := data[:512+512+512+512+50]
	for _, skip := range []bool{false, true} {
		got = nil
		err = ReadWebDataset(bytes.NewReader(cut), TarOptions{SkipImages: skip}, func(s Sample) error {
			got = append(got, s)
			return nil
		})
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("skip images %v: error %v, want ErrTruncated", skip, err)
		}
		if len(got) != 2 || got[0].Err != "" || !strings.Contains(got[1].Err, "b.png is truncated") {
			t.Errorf("skip images %v: samples %+v", skip, got)
		}
	}
	if _, err := TarMember(bytes.NewReader(cut), "b.png"); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("TarMember of the cut member: %v", err)
	}
	if image, err := TarMember(bytes.NewReader(cut), "a.png"); err != nil || string(image) != "small" {
		t.Errorf("TarMember before the cut = %q, %v", image, err)
	}
}
