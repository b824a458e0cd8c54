// Package search ranks the rows of an embeddings table against query
// vectors by exact search: it streams the table once and keeps, per query,
// the K best rows in a bounded heap. A row holds one or more vectors (an
// image's per-query ITC embeddings); its score for a query vector is the
// largest dot product with one of them, as BLIP-2's image-text similarity
// ranks images.
package search

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"blipflow/schemas"
)

// Hit is one ranked row.
type Hit struct {
	Key   string  // the row's key (input name)
	Score float32 // the largest dot product of the query with one of the row's vectors
	Row   int64   // the row's position: among the rows with an embedding (Searcher.Add), in the tables (Tables), or the image's number in an index
}

// TopK keeps the k best hits offered to it. Ties keep the earlier row.
type TopK struct {
	k     int
	worst hitHeap // min-heap: the worst kept hit at the root
}

// NewTopK returns an empty TopK that keeps k hits.
func NewTopK(k int) *TopK {
	return &TopK{k: k, worst: make(hitHeap, 0, k)}
}

// Offer considers a hit, keeping it when it beats the worst kept one.
// A NaN score ranks below every other.
func (t *TopK) Offer(h Hit) {
	if math.IsNaN(float64(h.Score)) {
		h.Score = float32(math.Inf(-1))
	}
	if len(t.worst) < t.k {
		heap.Push(&t.worst, h)
		return
	}
	if t.k == 0 || !better(h, t.worst[0]) {
		return
	}
	t.worst[0] = h
	heap.Fix(&t.worst, 0)
}

// Hits returns the kept hits, best first.
func (t *TopK) Hits() []Hit {
	out := slices.Clone([]Hit(t.worst))
	slices.SortFunc(out, func(a, b Hit) int {
		switch {
		case better(a, b):
			return -1
		case better(b, a):
			return 1
		}
		return 0
	})
	return out
}

// better reports whether a ranks above b: a higher score, or the same score
// on an earlier row.
func better(a, b Hit) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return a.Row < b.Row
}

// hitHeap is a container/heap of hits with the worst at the root.
type hitHeap []Hit

func (h hitHeap) Len() int           { return len(h) }
func (h hitHeap) Less(i, j int) bool { return better(h[j], h[i]) }
func (h hitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hitHeap) Push(x any)        { *h = append(*h, x.(Hit)) }
func (h *hitHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// MaxDot returns the largest dot product of query with one of the vectors
// laid end to end in vectors (whose length is a multiple of len(query)).
func MaxDot(vectors, query []float32) float32 {
	p := len(query)
	best := float32(math.Inf(-1))
	for o := 0; o+p <= len(vectors); o += p {
		best = max(best, dot(vectors[o:o+p], query))
	}
	return best
}

// dot is the dot product of two equal-length vectors, four lanes at a time.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// Searcher ranks streamed rows against a fixed set of query vectors.
type Searcher struct {
	queries [][]float32
	dim     int
	tops    []*TopK
	rows    int64
}

// NewSearcher returns a Searcher keeping the k best rows for each query.
// All queries must have the same, non-zero length.
func NewSearcher(queries [][]float32, k int) (*Searcher, error) {
	if len(queries) == 0 {
		return nil, errors.New("search: no query vectors")
	}
	if k < 1 {
		return nil, fmt.Errorf("search: top %d: want at least 1", k)
	}
	dim := len(queries[0])
	if dim == 0 {
		return nil, errors.New("search: empty query vector")
	}
	s := &Searcher{queries: queries, dim: dim}
	for i, q := range queries {
		if len(q) != dim {
			return nil, fmt.Errorf("search: query %d has %d values, query 0 has %d", i, len(q), dim)
		}
		s.tops = append(s.tops, NewTopK(k))
	}
	return s, nil
}

// Dim is the query vectors' length.
func (s *Searcher) Dim() int { return s.dim }

// Rows is the number of rows added so far.
func (s *Searcher) Rows() int64 { return s.rows }

// Add scores rows (keys[i] with its flattened vectors rows[i]) against every
// query. A row's length must be a positive multiple of the query length.
// Keys are kept, the row values are not.
func (s *Searcher) Add(keys []string, rows [][]float32) error {
	if len(keys) != len(rows) {
		return fmt.Errorf("search: %d keys for %d rows", len(keys), len(rows))
	}
	for i, row := range rows {
		if len(row) == 0 || len(row)%s.dim != 0 {
			return fmt.Errorf("search: row %q has %d values, not a multiple of the query length %d", keys[i], len(row), s.dim)
		}
		for qi, q := range s.queries {
			s.tops[qi].Offer(Hit{Key: keys[i], Score: MaxDot(row, q), Row: s.rows})
		}
		s.rows++
	}
	return nil
}

// Results returns each query's hits, best first.
func (s *Searcher) Results() [][]Hit {
	out := make([][]Hit, len(s.tops))
	for i, t := range s.tops {
		out[i] = t.Hits()
	}
	return out
}

// Table searches an embeddings (or results) table read from r for the k
// best rows of each query, streaming it once without holding it in memory.
// accept judges the table's metadata (model, kind, shape) and may refuse it
// with an error, which Table then returns instead of any result. schemas
// reads the metadata in the same pass as the rows, so accept runs when the
// scan ends, or as soon as a row's width does not fit the queries.
func Table(r io.ReaderAt, size int64, queries [][]float32, k int, accept func(schemas.Meta) error) ([][]Hit, schemas.Meta, error) {
	s, err := NewSearcher(queries, k)
	if err != nil {
		return nil, schemas.Meta{}, err
	}
	var scoreErr error
	meta, err := schemas.ScanEmbeddings(r, size, func(b schemas.EmbeddingBatch) error {
		scoreErr = s.Add(b.Keys, b.Vectors)
		return scoreErr
	})
	if err != nil && (scoreErr == nil || !errors.Is(err, scoreErr)) {
		return nil, meta, err // the table could not be read: meta is unknown
	}
	if accept != nil {
		if aerr := accept(meta); aerr != nil {
			return nil, meta, aerr
		}
	}
	if err != nil {
		return nil, meta, err
	}
	if meta.EmbeddingDim != s.dim {
		return nil, meta, fmt.Errorf("search: the table's vectors have %d values (%s), the queries %d",
			meta.EmbeddingDim, schemas.MetaEmbeddingDim, s.dim)
	}
	return s.Results(), meta, nil
}
