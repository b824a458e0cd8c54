package search

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"blipflow/schemas"
)

// writeTableFile writes rows as an embeddings table file.
func writeTableFile(t testing.TB, path string, meta schemas.Meta, keys []string, rows [][]float32) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := schemas.WriteEmbeddings(&buf, meta, keys, rows); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTablesMatchBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	dir := t.TempDir()
	meta := schemas.Meta{Model: "itm", EmbeddingKind: "itc_image", EmbeddingVectors: 4, EmbeddingDim: 16}
	var allKeys []string
	var allRows [][]float32
	var liveKeys []string
	var liveRows [][]float32
	var liveIdx []int64
	for ti, n := range []int{120, 1, 75} {
		keys, rows := randomRows(rng, n, 4, 16)
		for i := range keys {
			keys[i] = fmt.Sprintf("t%d/%s", ti, keys[i])
			if i%11 == 3 {
				rows[i] = nil
			}
		}
		writeTableFile(t, filepath.Join(dir, "job", "shards", fmt.Sprintf("s%d.parquet", ti)), meta, keys, rows)
		for i := range keys {
			if rows[i] != nil {
				liveKeys, liveRows = append(liveKeys, keys[i]), append(liveRows, rows[i])
				liveIdx = append(liveIdx, int64(len(allKeys)+i))
			}
		}
		allKeys, allRows = append(allKeys, keys...), append(allRows, rows...)
	}
	// Job state under a hidden folder is not a table.
	writeTableFile(t, filepath.Join(dir, "job", ".blipflow", "x.parquet"), meta, []string{"hidden"}, [][]float32{make([]float32, 64)})

	paths, err := ExpandTables([]string{filepath.Join(dir, "job")})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 {
		t.Fatalf("folder expands to %q", paths)
	}
	glob, err := ExpandTables([]string{filepath.Join(dir, "job", "shards", "s[02].parquet"), paths[1]})
	if err != nil || len(glob) != 3 || glob[2] != paths[1] {
		t.Fatalf("glob and file expand to %q, %v", glob, err)
	}
	queries := [][]float32{liveRows[5][16:32], liveRows[150][:16], allRows[0][:16]}
	hits, err := Tables(paths, queries, 7, nil)
	if err != nil {
		t.Fatal(err)
	}
	for qi, q := range queries {
		want := bruteForce(liveKeys, liveRows, q, 7)
		for i := range want {
			want[i].Row = liveIdx[want[i].Row]
		}
		if !slices.Equal(hits[qi], want) {
			t.Errorf("query %d: got %v\nwant %v", qi, hits[qi], want)
		}
	}
	_, err = Tables(paths, queries, 7, func(p string, m schemas.Meta) error {
		if strings.HasSuffix(p, "s1.parquet") {
			return fmt.Errorf("refused %s", p)
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "s1.parquet") {
		t.Errorf("refusal: %v", err)
	}
	for _, bad := range [][]string{{filepath.Join(dir, "nope")}, {filepath.Join(dir, "*.none")}, {t.TempDir()}} {
		if _, err := ExpandTables(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := Tables(paths, [][]float32{make([]float32, 8)}, 3, nil); err == nil || !strings.Contains(err.Error(), "16") {
		t.Errorf("queries of 8 values on tables of 16: %v", err)
	}
}

// BenchmarkTables scans the same table as BenchmarkTable with the vector
// reader on GOMAXPROCS goroutines.
func BenchmarkTables(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	keys, rows := randomRows(rng, 4096, 32, 256)
	meta := schemas.Meta{Model: "itm", EmbeddingKind: "itc_image", EmbeddingVectors: 32, EmbeddingDim: 256}
	path := filepath.Join(b.TempDir(), "t.parquet")
	writeTableFile(b, path, meta, keys, rows)
	q := [][]float32{rows[0][:256]}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Tables([]string{path}, q, 10, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
}
