package schemas

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// TestVectorScanMatchesArrowScan reads tables with null rows in every
// position (first, last, runs) with both readers and compares rows, keys,
// values and row numbers.
func TestVectorScanMatchesArrowScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	meta := Meta{Model: "m", EmbeddingKind: "itc_image", EmbeddingVectors: 3, EmbeddingDim: 5}
	for _, tc := range []struct {
		name  string
		n     int
		nulls func(i int) bool
	}{
		{"no nulls", 300, func(int) bool { return false }},
		{"sparse nulls", 300, func(i int) bool { return i == 0 || i == 299 || i%37 == 5 }},
		{"runs of nulls", 500, func(i int) bool { return (i/20)%3 == 1 }},
		{"all null", 10, func(int) bool { return true }},
	} {
		names := make([]string, tc.n)
		vecs := make([][]float32, tc.n)
		for i := range names {
			names[i] = fmt.Sprintf("k%04d", i)
			if !tc.nulls(i) {
				vecs[i] = make([]float32, 15)
				for j := range vecs[i] {
					vecs[i][j] = rng.Float32()
				}
			}
		}
		var buf bytes.Buffer
		if err := WriteEmbeddings(&buf, meta, names, vecs); err != nil {
			t.Fatal(err)
		}
		r := bytes.NewReader(buf.Bytes())
		tab, err := OpenVectors(r, r.Size())
		if err != nil {
			t.Fatal(err)
		}
		var gotKeys []string
		var gotVals []float32
		err = tab.Scan(false, func(b VectorBatch) error {
			if len(b.Values) != len(b.Keys)*15 || len(b.Rows) != len(b.Keys) {
				return fmt.Errorf("batch of %d keys, %d rows, %d values", len(b.Keys), len(b.Rows), len(b.Values))
			}
			for i, row := range b.Rows {
				if names[row] != b.Keys[i] {
					return fmt.Errorf("row %d has key %q, want %q", row, b.Keys[i], names[row])
				}
			}
			gotKeys = append(gotKeys, b.Keys...)
			gotVals = append(gotVals, b.Values...)
			return nil
		})
		tab.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var wantKeys []string
		var wantVals []float32
		if _, err := ScanEmbeddings(r, r.Size(), func(b EmbeddingBatch) error {
			wantKeys = append(wantKeys, b.Keys...)
			for _, v := range b.Vectors {
				wantVals = append(wantVals, v...)
			}
			return nil
		}); err != nil && tc.name != "all null" {
			t.Fatal(err)
		}
		if !slices.Equal(gotKeys, wantKeys) || !slices.Equal(gotVals, wantVals) {
			t.Errorf("%s: vector scan gives %d keys, %d values; arrow scan %d, %d", tc.name, len(gotKeys), len(gotVals), len(wantKeys), len(wantVals))
		}
	}
}

// TestVectorScanResultsTable reads sources and first captions of a results
// table, scanning its row group twice at once as concurrent scans do.
func TestVectorScanResultsTable(t *testing.T) {
	meta := Meta{Model: "m", Task: "both", EmbeddingKind: "itc_image", EmbeddingVectors: 2, EmbeddingDim: 2048}
	var rows []Row
	for i := range 200 {
		r := Row{Key: fmt.Sprintf("img%03d", i), Source: fmt.Sprintf("/data/img%03d.png", i)}
		switch i % 4 {
		case 0:
			r.Captions = []string{fmt.Sprintf("caption %d", i), "second"}
			r.Embedding = make([]float32, 4096)
			r.Embedding[0] = float32(i)
		case 1:
			r.Error = "decode: bad"
		default:
			r.Embedding = make([]float32, 4096)
			r.Embedding[4095] = float32(i)
		}
		rows = append(rows, r)
	}
	var buf bytes.Buffer
	if err := WriteRows(&buf, meta, rows); err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(buf.Bytes())
	tab, err := OpenVectors(r, r.Size())
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	var mu sync.Mutex
	seen := 0
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for g := range errs {
		wg.Go(func() {
			errs[g] = tab.ScanRowGroup(0, true, func(b VectorBatch) error {
				mu.Lock()
				defer mu.Unlock()
				for i, row := range b.Rows {
					want := rows[row]
					cap0 := ""
					if len(want.Captions) > 0 {
						cap0 = want.Captions[0]
					}
					v := b.Values[i*4096 : (i+1)*4096]
					if b.Keys[i] != want.Key || b.Sources[i] != want.Source || b.Captions[i] != cap0 || !slices.Equal(v, want.Embedding) {
						return fmt.Errorf("row %d: key %q source %q caption %q", row, b.Keys[i], b.Sources[i], b.Captions[i])
					}
					seen++
				}
				return nil
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if seen != 300 {
		t.Errorf("%d rows with embeddings in two scans, want 2×150", seen)
	}
}
