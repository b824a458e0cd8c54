package search

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"blipflow/schemas"
)

// bruteForce ranks every row for query q by sorting all scores.
func bruteForce(keys []string, rows [][]float32, q []float32, k int) []Hit {
	var all []Hit
	for i, r := range rows {
		all = append(all, Hit{Key: keys[i], Score: MaxDot(r, q), Row: int64(i)})
	}
	slices.SortStableFunc(all, func(a, b Hit) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	return all[:min(k, len(all))]
}

func randomRows(rng *rand.Rand, n, vectors, dim int) ([]string, [][]float32) {
	keys := make([]string, n)
	rows := make([][]float32, n)
	for i := range rows {
		keys[i] = fmt.Sprintf("img%05d.jpg", i)
		rows[i] = make([]float32, vectors*dim)
		for j := range rows[i] {
			rows[i][j] = float32(rng.NormFloat64())
		}
	}
	return keys, rows
}

func TestMaxDot(t *testing.T) {
	for _, tc := range []struct {
		name           string
		vectors, query []float32
		want           float32
	}{
		{"one vector", []float32{1, 2, 3}, []float32{1, 1, 1}, 6},
		{"best of two", []float32{1, 0, 0, 0, 2, 0}, []float32{0, 1, 0}, 2},
		{"all negative", []float32{-1, -1, -3, -3}, []float32{1, 1}, -2},
		{"odd length tail", []float32{1, 2, 3, 4, 5}, []float32{1, 1, 1, 1, 2}, 20},
		{"no vectors", nil, []float32{1}, float32(math.Inf(-1))},
	} {
		if got := MaxDot(tc.vectors, tc.query); got != tc.want {
			t.Errorf("%s: MaxDot = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTopKMatchesSorting(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys, rows := randomRows(rng, 500, 4, 8)
	q := rows[7][:8]
	for _, k := range []int{1, 5, 100, 499, 500, 1000} {
		s, err := NewSearcher([][]float32{q}, k)
		if err != nil {
			t.Fatal(err)
		}
		// Feed in uneven batches, as a table scan does.
		for lo := 0; lo < len(rows); lo += 37 {
			hi := min(lo+37, len(rows))
			if err := s.Add(keys[lo:hi], rows[lo:hi]); err != nil {
				t.Fatal(err)
			}
		}
		got, want := s.Results()[0], bruteForce(keys, rows, q, k)
		if !slices.Equal(got, want) {
			t.Errorf("k=%d: top hits differ:\n got %v\nwant %v", k, head(got), head(want))
		}
	}
}

func head(h []Hit) []Hit { return h[:min(5, len(h))] }

func TestTopKTiesAndNaN(t *testing.T) {
	top := NewTopK(3)
	nan := float32(math.NaN())
	for i, s := range []float32{1, nan, 2, 1, 2, 1} {
		top.Offer(Hit{Key: fmt.Sprint(i), Score: s, Row: int64(i)})
	}
	var got []string
	for _, h := range top.Hits() {
		got = append(got, h.Key)
	}
	if want := []string{"2", "4", "0"}; !slices.Equal(got, want) {
		t.Errorf("ranked %v, want %v (ties keep the earlier row, NaN last)", got, want)
	}
}

func TestSearcherErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		queries [][]float32
		k       int
		want    string
	}{
		{"no queries", nil, 3, "no query"},
		{"zero k", [][]float32{{1}}, 0, "top 0"},
		{"empty query", [][]float32{{}}, 1, "empty"},
		{"ragged queries", [][]float32{{1, 2}, {1}}, 1, "query 1"},
	} {
		if _, err := NewSearcher(tc.queries, tc.k); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
	s, _ := NewSearcher([][]float32{{1, 2}}, 1)
	if err := s.Add([]string{"a"}, [][]float32{{1, 2, 3}}); err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("row of 3 values for queries of 2: got %v", err)
	}
}

// writeTable writes rows as an embeddings table.
func writeTable(t testing.TB, meta schemas.Meta, keys []string, rows [][]float32) *bytes.Reader {
	t.Helper()
	var buf bytes.Buffer
	if err := schemas.WriteEmbeddings(&buf, meta, keys, rows); err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(buf.Bytes())
}

func TestTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	keys, rows := randomRows(rng, 300, 8, 16)
	rows[10] = nil // an input that failed: left out of the ranking
	meta := schemas.Meta{Model: "itm", EmbeddingKind: "itc_image", EmbeddingVectors: 8, EmbeddingDim: 16, Normalized: false}
	r := writeTable(t, meta, keys, rows)
	queries := [][]float32{rows[3][16:32], rows[200][:16]}

	hits, got, err := Table(r, r.Size(), queries, 5, func(m schemas.Meta) error {
		if m.Model != "itm" {
			return fmt.Errorf("model %q", m.Model)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.EmbeddingKind != "itc_image" {
		t.Errorf("meta kind %q", got.EmbeddingKind)
	}
	var liveKeys []string
	var liveRows [][]float32
	for i, row := range rows {
		if row != nil {
			liveKeys, liveRows = append(liveKeys, keys[i]), append(liveRows, row)
		}
	}
	for qi, q := range queries {
		want := bruteForce(liveKeys, liveRows, q, 5)
		if !slices.Equal(hits[qi], want) {
			t.Errorf("query %d: got %v, want %v", qi, hits[qi], want)
		}
	}
	if hits[0][0].Key != keys[3] || hits[1][0].Key != keys[200] {
		t.Errorf("a row's own vector is not its best match: %v, %v", hits[0][0], hits[1][0])
	}

	refuse := errors.New("refused")
	if _, _, err := Table(r, r.Size(), queries, 5, func(schemas.Meta) error { return refuse }); !errors.Is(err, refuse) {
		t.Errorf("accept's refusal: got %v", err)
	}
	_, _, err = Table(r, r.Size(), [][]float32{make([]float32, 32)}, 5, nil)
	if err == nil || !strings.Contains(err.Error(), "16") || !strings.Contains(err.Error(), "32") {
		t.Errorf("queries of 32 values on a table of 16: got %v", err)
	}
}

// BenchmarkSearcherAdd scores in-memory rows of 32 vectors of 256 values
// (the released BLIP-2 ITC shape) against one query.
func BenchmarkSearcherAdd(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	keys, rows := randomRows(rng, 4096, 32, 256)
	s, err := NewSearcher([][]float32{rows[0][:256]}, 10)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Add(keys, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkTable streams a Parquet embeddings table of 4096 rows of 32×256
// values and ranks them for one query.
func BenchmarkTable(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	keys, rows := randomRows(rng, 4096, 32, 256)
	meta := schemas.Meta{Model: "itm", EmbeddingKind: "itc_image", EmbeddingVectors: 32, EmbeddingDim: 256}
	r := writeTable(b, meta, keys, rows)
	q := [][]float32{rows[0][:256]}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := Table(r, r.Size(), q, 10, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(rows))/b.Elapsed().Seconds(), "rows/s")
}
