package schemas

import (
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// vectorBatchRows is how many rows' worth of embedding values a vector scan
// decodes at a time.
const vectorBatchRows = 64

// VectorTable is an embeddings or results table opened for fast scans of
// its embedding column: the float values are decoded by Parquet's column
// reader straight into one contiguous buffer per batch, without building
// Arrow arrays or copying rows. Row groups can be scanned concurrently.
type VectorTable struct {
	f                              *parquetFile
	meta                           Meta
	table                          string
	width                          int
	keyCol, embCol, srcCol, capCol int // Parquet leaf column indices; -1 when absent
}

// VectorBatch is a run of rows of one row group that have an embedding.
type VectorBatch struct {
	// Rows are the rows' positions in the table (0-based, counting rows
	// without an embedding too).
	Rows []int64
	// Keys are the rows' keys; the strings may be kept.
	Keys []string
	// Values holds the rows' embeddings end to end (len(Keys)×width
	// floats). It is reused by the next batch: copy to keep.
	Values []float32
	// Sources and Captions (the first caption, "" when none) are filled
	// when the scan asks for them and the table has them (results tables).
	Sources, Captions []string
}

// OpenVectors opens the table in r for vector scans and checks its
// metadata and columns.
func OpenVectors(r io.ReaderAt, size int64) (*VectorTable, error) {
	f, err := openParquet(r, size)
	if err != nil {
		return nil, fmt.Errorf("scan vectors: %w", err)
	}
	t, err := newVectorTable(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("scan vectors: %w", err)
	}
	return t, nil
}

func newVectorTable(f *parquetFile) (*VectorTable, error) {
	meta, table, err := parseMeta(f.lookupMeta, TableEmbeddings, TableResults)
	if err != nil {
		return nil, err
	}
	width := meta.EmbeddingWidth()
	if width == 0 {
		return nil, fmt.Errorf("%s table has no embeddings (metadata %s=%d, %s=%d)",
			table, MetaEmbeddingVectors, meta.EmbeddingVectors, MetaEmbeddingDim, meta.EmbeddingDim)
	}
	if _, err := f.column(colEmbedding, embeddingType(width)); err != nil {
		return nil, err
	}
	schema := f.pq.MetaData().Schema
	leaf := func(path string, want parquet.Type) (int, error) {
		i := schema.ColumnIndexByName(path)
		if i < 0 {
			return -1, nil
		}
		if got := schema.Column(i).PhysicalType(); got != want {
			return -1, fmt.Errorf("column %q has physical type %s, want %s", path, got, want)
		}
		return i, nil
	}
	t := &VectorTable{f: f, meta: meta, table: table, width: width}
	for _, c := range []struct {
		path     string
		typ      parquet.Type
		dst      *int
		required bool
	}{
		{colKey, parquet.Types.ByteArray, &t.keyCol, true},
		{colEmbedding + ".list." + listElemField, parquet.Types.Float, &t.embCol, true},
		{colSource, parquet.Types.ByteArray, &t.srcCol, false},
		{colCaptions + ".list." + listElemField, parquet.Types.ByteArray, &t.capCol, false},
	} {
		i, err := leaf(c.path, c.typ)
		if err != nil {
			return nil, err
		}
		if i < 0 && c.required {
			return nil, fmt.Errorf("required column %q missing", c.path)
		}
		*c.dst = i
	}
	return t, nil
}

// Meta is the table's metadata.
func (t *VectorTable) Meta() Meta { return t.meta }

// RowGroups is the number of row groups.
func (t *VectorTable) RowGroups() int { return t.f.pq.NumRowGroups() }

// NumRows is the number of rows.
func (t *VectorTable) NumRows() int64 { return t.f.pq.NumRows() }

// Close releases the table (not the reader it was opened on).
func (t *VectorTable) Close() error { return t.f.Close() }

// Scan streams every row group in order; see ScanRowGroup.
func (t *VectorTable) Scan(withInfo bool, fn func(VectorBatch) error) error {
	for g := range t.RowGroups() {
		if err := t.ScanRowGroup(g, withInfo, fn); err != nil {
			return err
		}
	}
	return nil
}

// ScanRowGroup streams the rows of row group g that have an embedding, in
// batches of at most 64 rows; withInfo also reads their sources and first
// captions. An error from fn stops the scan and is returned as is.
func (t *VectorTable) ScanRowGroup(g int, withInfo bool, fn func(VectorBatch) error) error {
	rg := t.f.pq.RowGroup(g)
	nrows := rg.NumRows()
	first := int64(0)
	for i := range g {
		first += t.f.pq.MetaData().RowGroup(i).NumRows()
	}
	keys, err := readStrings(rg, t.keyCol, nrows, false)
	if err != nil {
		return fmt.Errorf("scan vectors: row group %d: column %s: %w", g, colKey, err)
	}
	var sources, captions []string
	if withInfo && t.srcCol >= 0 {
		if sources, err = readStrings(rg, t.srcCol, nrows, false); err != nil {
			return fmt.Errorf("scan vectors: row group %d: column %s: %w", g, colSource, err)
		}
	}
	if withInfo && t.capCol >= 0 {
		if captions, err = readStrings(rg, t.capCol, nrows, true); err != nil {
			return fmt.Errorf("scan vectors: row group %d: column %s: %w", g, colCaptions, err)
		}
	}
	cr, err := rg.Column(t.embCol)
	if err != nil {
		return fmt.Errorf("scan vectors: row group %d: column %s: %w", g, colEmbedding, err)
	}
	col, ok := cr.(*file.Float32ColumnChunkReader)
	if !ok {
		return fmt.Errorf("scan vectors: row group %d: column %s is not float", g, colEmbedding)
	}
	s := vectorScan{t: t, fn: fn, keys: keys, sources: sources, captions: captions, first: first, nrows: nrows,
		maxDef: cr.Descriptor().MaxDefinitionLevel(), row: -1}
	if err := s.run(col); err != nil {
		return err
	}
	return nil
}

// vectorScan walks one row group's embedding column.
type vectorScan struct {
	t                       *VectorTable
	fn                      func(VectorBatch) error
	keys, sources, captions []string
	first, nrows            int64
	maxDef                  int16

	row     int64     // current row within the row group (-1 before the first)
	open    bool      // whether row is still being read (by walk)
	rowVals int       // values of the open row seen so far
	out     []float32 // complete rows (and the current row's values) not yet emitted
	batch   VectorBatch
	fnErr   error
}

func (s *vectorScan) run(col *file.Float32ColumnChunkReader) error {
	w := s.t.width
	n := vectorBatchRows * w
	values := make([]float32, n)
	defs := make([]int16, n)
	reps := make([]int16, n)
	for col.HasNext() {
		want := n
		if s.open && s.rowVals > 0 && s.rowVals < w {
			want -= s.rowVals // end this batch on a row boundary, so the next one starts on one
		}
		lvls, nv, err := col.ReadBatch(int64(want), values, defs, reps)
		if err != nil {
			return fmt.Errorf("scan vectors: column %s: %w", colEmbedding, err)
		}
		if lvls == 0 {
			break
		}
		if reps[0] == 0 && int(lvls) == nv && nv%w == 0 {
			// Whole rows without nulls: the decoded values are the batch.
			if err := s.endRow(); err != nil {
				return err
			}
			if err := s.flushOut(); err != nil {
				return err
			}
			for range nv / w {
				s.row++
				if err := s.add(); err != nil {
					return err
				}
			}
			if err := s.emit(values[:nv]); err != nil {
				return err
			}
			continue
		}
		if err := s.walk(values[:nv], defs[:lvls], reps[:lvls]); err != nil {
			return err
		}
	}
	if err := s.endRow(); err != nil {
		return err
	}
	if s.row+1 != s.nrows {
		return fmt.Errorf("scan vectors: column %s has %d rows, column %s %d", colEmbedding, s.row+1, colKey, s.nrows)
	}
	return s.flushOut()
}

// walk follows the levels of a batch with nulls or partial rows, copying
// values into s.out.
func (s *vectorScan) walk(values []float32, defs, reps []int16) error {
	v := 0
	for i, rep := range reps {
		if rep == 0 {
			if err := s.endRow(); err != nil {
				return err
			}
			s.row++
			s.open, s.rowVals = true, 0
		}
		if defs[i] == s.maxDef {
			s.out = append(s.out, values[v])
			v++
			s.rowVals++
		}
	}
	if len(s.batch.Keys) >= vectorBatchRows {
		return s.flushOut()
	}
	return nil
}

// endRow closes the open row: a complete one joins the batch, a null one
// is skipped, a partial one is an error.
func (s *vectorScan) endRow() error {
	if !s.open {
		return nil
	}
	s.open = false
	switch s.rowVals {
	case 0:
		return nil
	case s.t.width:
		return s.add()
	}
	key := ""
	if s.row < s.nrows {
		key = s.keys[s.row]
	}
	return fmt.Errorf("scan vectors: row %d (%q) has %d floats, the metadata says %d×%d", s.first+s.row, key, s.rowVals, s.t.meta.EmbeddingVectors, s.t.meta.EmbeddingDim)
}

// add puts the current row in the batch.
func (s *vectorScan) add() error {
	if s.row >= s.nrows {
		return fmt.Errorf("scan vectors: column %s has more rows than column %s (%d)", colEmbedding, colKey, s.nrows)
	}
	b := &s.batch
	b.Rows = append(b.Rows, s.first+s.row)
	b.Keys = append(b.Keys, s.keys[s.row])
	if s.sources != nil {
		b.Sources = append(b.Sources, s.sources[s.row])
	}
	if s.captions != nil {
		b.Captions = append(b.Captions, s.captions[s.row])
	}
	return nil
}

// flushOut emits the complete rows held in s.out and keeps the open row's
// values.
func (s *vectorScan) flushOut() error {
	complete := len(s.batch.Keys) * s.t.width
	if err := s.emit(s.out[:complete]); err != nil {
		return err
	}
	s.out = append(s.out[:0], s.out[complete:]...)
	return nil
}

// emit hands the batch, whose values are vals, to fn and resets it.
func (s *vectorScan) emit(vals []float32) error {
	if len(s.batch.Keys) == 0 {
		return nil
	}
	s.batch.Values = vals
	err := s.fn(s.batch)
	s.batch = VectorBatch{Rows: s.batch.Rows[:0], Keys: s.batch.Keys[:0], Sources: s.batch.Sources[:0], Captions: s.batch.Captions[:0]}
	return err
}

// readStrings reads a string column of nrows rows of a row group; with
// firstOfList the column is a list's element and each row gets its first
// element ("" for an empty or null list).
func readStrings(rg *file.RowGroupReader, col int, nrows int64, firstOfList bool) ([]string, error) {
	cr, err := rg.Column(col)
	if err != nil {
		return nil, err
	}
	br, ok := cr.(*file.ByteArrayColumnChunkReader)
	if !ok {
		return nil, fmt.Errorf("not a byte array column")
	}
	maxDef := cr.Descriptor().MaxDefinitionLevel()
	out := make([]string, 0, nrows)
	const chunk = 4096
	values := make([]parquet.ByteArray, chunk)
	defs := make([]int16, chunk)
	reps := make([]int16, chunk)
	for br.HasNext() {
		lvls, _, err := br.ReadBatch(chunk, values, defs, reps)
		if err != nil {
			return nil, err
		}
		if lvls == 0 {
			break
		}
		v := 0
		for i := range int(lvls) {
			present := defs[i] == maxDef
			if !firstOfList || reps[i] == 0 {
				s := ""
				if present {
					s = string(values[v])
				}
				out = append(out, s)
			}
			if present {
				v++
			}
		}
	}
	if int64(len(out)) != nrows {
		return nil, fmt.Errorf("%d values for %d rows", len(out), nrows)
	}
	return out, nil
}
