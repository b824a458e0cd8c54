package index

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"blipflow/model/search"
)

var testMeta = Meta{Model: "synthetic", Fingerprint: "sha256:abc", Kind: "itc_image", Vectors: 8, Dim: 32, Normalized: true}

// buildSynth builds an index of n synthetic images and returns its path
// and the images' vectors.
func buildSynth(t testing.TB, n int, p Params) (string, [][]float32) {
	t.Helper()
	syn := NewSynth(testMeta.Vectors, testMeta.Dim, 16, 7)
	path := filepath.Join(t.TempDir(), "test.bfi")
	b, err := Create(path, testMeta, p)
	if err != nil {
		t.Fatal(err)
	}
	var all [][]float32
	for i := range n {
		v := make([]float32, testMeta.Vectors*testMeta.Dim)
		syn.Image(i, v)
		all = append(all, v)
		if err := b.Add(keyOf(i), Info{Source: "/src/" + keyOf(i), Caption: "caption " + keyOf(i)}, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return path, all
}

func keyOf(i int) string { return "img" + strings.Repeat("0", 4-len(itoa(i))) + itoa(i) }

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// exact ranks every image by the best dot product of the query's vectors
// with its own.
func exact(all [][]float32, query [][]float32, k int) []search.Hit {
	top := search.NewTopK(k)
	for i, v := range all {
		best := float32(math.Inf(-1))
		for _, q := range query {
			best = max(best, search.MaxDot(v, q))
		}
		top.Offer(search.Hit{Key: keyOf(i), Score: best, Row: int64(i)})
	}
	return top.Hits()
}

func TestSearchProbingEverythingIsExact(t *testing.T) {
	path, all := buildSynth(t, 600, Params{Lists: 16, Seed: 1})
	ix, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if ix.Len() != 600 || ix.Key(17) != keyOf(17) || ix.Source(3) != "/src/img0003" || ix.Caption(5) != "caption img0005" {
		t.Fatalf("len %d, key %q, source %q, caption %q", ix.Len(), ix.Key(17), ix.Source(3), ix.Caption(5))
	}
	syn := NewSynth(testMeta.Vectors, testMeta.Dim, 16, 7)
	for qi := range 20 {
		q := make([]float32, testMeta.Dim)
		syn.Query(qi, q)
		got, err := ix.Search([][]float32{q}, 10, SearchOptions{Probe: 16, Rerank: 600})
		if err != nil {
			t.Fatal(err)
		}
		if want := exact(all, [][]float32{q}, 10); !slices.Equal(got, want) {
			t.Fatalf("query %d: got %v\nwant %v", qi, got, want)
		}
	}
	// An image query (all its vectors) finds the image itself first, with
	// its own vectors' best product: 1 for unit vectors.
	img := all[42]
	var query [][]float32
	for v := range testMeta.Vectors {
		query = append(query, img[v*testMeta.Dim:(v+1)*testMeta.Dim])
	}
	got, err := ix.Search(query, 5, SearchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := exact(all, query, 5); !slices.Equal(got, want) || got[0].Key != keyOf(42) {
		t.Errorf("image query: got %v, want %v led by %s", got, want, keyOf(42))
	}
}

func TestSearchRecallWithDefaults(t *testing.T) {
	path, all := buildSynth(t, 3000, Params{Seed: 2})
	ix, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	h := ix.Header()
	if h.Lists < 2 || h.SubVectors != testMeta.Dim/8 {
		t.Fatalf("default lists %d, sub-vectors %d", h.Lists, h.SubVectors)
	}
	syn := NewSynth(testMeta.Vectors, testMeta.Dim, 16, 7)
	found, total := 0, 0
	for qi := range 50 {
		q := make([]float32, testMeta.Dim)
		syn.Query(qi, q)
		got, err := ix.Search([][]float32{q}, 10, SearchOptions{Probe: h.Lists / 4})
		if err != nil {
			t.Fatal(err)
		}
		want := exact(all, [][]float32{q}, 10)
		for _, w := range want {
			total++
			if slices.ContainsFunc(got, func(g search.Hit) bool { return g.Row == w.Row }) {
				found++
			}
		}
		for _, g := range got {
			if e := search.MaxDot(all[g.Row], q); e != g.Score {
				t.Fatalf("hit %v: score is not the exact one %v", g, e)
			}
		}
	}
	if recall := float64(found) / float64(total); recall < 0.9 {
		t.Errorf("recall@10 %.3f probing a quarter of %d lists, want ≥ 0.9", recall, h.Lists)
	}
}

func TestEmptyIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.bfi")
	b, err := Create(path, testMeta, Params{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	ix, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	hits, err := ix.Search([][]float32{make([]float32, testMeta.Dim)}, 10, SearchOptions{})
	if err != nil || len(hits) != 0 || ix.Len() != 0 {
		t.Errorf("empty index: %d images, hits %v, err %v", ix.Len(), hits, err)
	}
}

func TestCheckModel(t *testing.T) {
	path, _ := buildSynth(t, 40, Params{})
	ix, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if err := ix.CheckModel("synthetic", "sha256:abc", "itc_image", 32); err != nil {
		t.Errorf("same model refused: %v", err)
	}
	err = ix.CheckModel("other-model", "sha256:def", "itc_image", 256)
	for _, want := range []string{"synthetic", "sha256:abc", "32", "other-model", "sha256:def", "256"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("other model: %v does not name %q", err, want)
		}
	}
	if _, err := ix.Search([][]float32{make([]float32, 5)}, 3, SearchOptions{}); err == nil {
		t.Error("query of 5 values on an index of 32: no error")
	}
}

// TestDamagedFiles flips one byte in every section and cuts the file at
// several places: each is an error from Open or, for the full vectors,
// from the query that reads them; never a crash or a silent answer.
func TestDamagedFiles(t *testing.T) {
	path, all := buildSynth(t, 64, Params{Lists: 4})
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseHeader(good[:headerSize], int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(t.TempDir(), "damaged.bfi")
	try := func(name string, data []byte) error {
		if err := os.WriteFile(damaged, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ix, err := Open(damaged)
		if err != nil {
			return err
		}
		defer ix.Close()
		// An image query of every image reads every image's vectors.
		for _, img := range all {
			if _, err := ix.Search([][]float32{img[:testMeta.Dim]}, 3, SearchOptions{Probe: 4, Rerank: 64}); err != nil {
				return err
			}
		}
		return nil
	}
	offsets := map[string]int{"magic": 0, "header body": 40}
	for _, s := range h.sections {
		if s.length > 0 {
			offsets[sectionNames[s.id]] = int(s.offset + s.length/2)
		}
	}
	for name, off := range offsets {
		bad := slices.Clone(good)
		bad[off] ^= 0x40
		if err := try(name, bad); err == nil {
			t.Errorf("byte %d in %s flipped: no error", off, name)
		} else if !strings.Contains(err.Error(), "corrupt") && !errors.Is(err, ErrNotIndex) {
			t.Errorf("byte in %s flipped: %v does not say corrupt", name, err)
		}
	}
	for _, cut := range []int{0, 10, headerSize - 1, headerSize + 100, len(good) / 2, len(good) - 1} {
		if err := try("cut", good[:cut]); err == nil {
			t.Errorf("file cut at %d of %d bytes: no error", cut, len(good))
		}
	}
	if err := try("intact", good); err != nil {
		t.Errorf("intact copy: %v", err)
	}
}

func FuzzParseHeader(f *testing.F) {
	h := &Header{Meta: testMeta, Images: 3, Lists: 2, SubVectors: 4}
	for id := range sectionNames {
		h.sections = append(h.sections, section{id: id, offset: uint64(headerSize + sectionAlign*int(id)), length: 10})
	}
	slices.SortFunc(h.sections, func(a, b section) int { return int(a.offset) - int(b.offset) })
	page, err := h.marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(page, int64(1<<20))
	f.Add(page[:100], int64(100))
	f.Add([]byte(magic), int64(8))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		h, err := ParseHeader(b, size)
		if err != nil {
			return
		}
		for _, s := range h.sections {
			if s.offset+s.length > uint64(size) || s.offset < headerSize {
				t.Fatalf("accepted section %d at %d+%d in a file of %d", s.id, s.offset, s.length, size)
			}
		}
	})
}

func TestSelectTop(t *testing.T) {
	for _, scores := range [][]float32{
		{5, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5},
		{1, 1, 1, 1, 1},
		{3, 2, 1},
		{1, 2, 3, 4, 5, 6, 7, 8},
	} {
		for k := 1; k <= len(scores); k++ {
			idx := make([]int32, len(scores))
			for i := range idx {
				idx[i] = int32(i)
			}
			selectTop(idx, scores, k)
			sorted := slices.Clone(scores)
			slices.Sort(sorted)
			slices.Reverse(sorted)
			var got []float32
			for _, i := range idx[:k] {
				got = append(got, scores[i])
			}
			slices.Sort(got)
			slices.Reverse(got)
			if !slices.Equal(got, sorted[:k]) {
				t.Errorf("top %d of %v: %v", k, scores, got)
			}
		}
	}
}
