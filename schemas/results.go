package schemas

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Column names of the results table (see README.md).
const (
	colKey        = "key"
	colSource     = "source"
	colSize       = "size"
	colSHA256     = "sha256"
	colWidth      = "width"
	colHeight     = "height"
	colCaptions   = "captions"
	colTokenIDs   = "token_ids"
	colEmbedding  = "embedding"
	colError      = "error"
	colDecodeMS   = "decode_ms"
	colModelMS    = "model_ms"
	colExtra      = "extra"
	listElemField = "element"
)

// Row is one image of a results table.
type Row struct {
	Key           string            // stable image key (relative path, S3 key or manifest key): the join column
	Source        string            // full URL of the input (s3://…, file path)
	Size          int64             // source bytes
	SHA256        string            // hex SHA-256 of the source bytes
	Width, Height int32             // decoded size (0 on error)
	Captions      []string          // one per returned sequence (empty for embed-only)
	TokenIDs      [][]int32         // generated token ids per caption
	Embedding     []float32         // flattened [EmbeddingVectors*EmbeddingDim]; nil when not embedded
	Error         string            // empty when ok, else "stage: reason" (stage: read, decode or model)
	DecodeMS      float32           // image decode and preprocessing time
	ModelMS       float32           // model time
	Extra         map[string]string // carried-through manifest columns (may be empty)
}

// listOf is a list type whose element field is named as Parquet names it,
// so the stored Arrow schema matches the Parquet column paths.
func listOf(t arrow.DataType) *arrow.ListType {
	return arrow.ListOfField(arrow.Field{Name: listElemField, Type: t, Nullable: false})
}

// embeddingType is the Arrow type readers see for the embedding column: a
// FixedSizeList<float32> of width floats, or, in a table without embeddings
// (width 0, which Arrow's FixedSizeList does not allow), a list<float32>
// whose rows are all null.
func embeddingType(width int) arrow.DataType {
	if width == 0 {
		return embeddingWriteType()
	}
	return arrow.FixedSizeListOfField(int32(width), arrow.Field{Name: listElemField, Type: arrow.PrimitiveTypes.Float32, Nullable: false})
}

// embeddingWriteType is the Arrow type the embedding column is written from
// (see writeParquet).
func embeddingWriteType() arrow.DataType {
	return listOf(arrow.PrimitiveTypes.Float32)
}

// resultsFields lists the results table's columns with the given type of
// the embedding column.
func resultsFields(embedding arrow.DataType) []arrow.Field {
	return []arrow.Field{
		{Name: colKey, Type: arrow.BinaryTypes.String},
		{Name: colSource, Type: arrow.BinaryTypes.String},
		{Name: colSize, Type: arrow.PrimitiveTypes.Int64},
		{Name: colSHA256, Type: arrow.BinaryTypes.String},
		{Name: colWidth, Type: arrow.PrimitiveTypes.Int32},
		{Name: colHeight, Type: arrow.PrimitiveTypes.Int32},
		{Name: colCaptions, Type: listOf(arrow.BinaryTypes.String)},
		{Name: colTokenIDs, Type: listOf(listOf(arrow.PrimitiveTypes.Int32))},
		{Name: colEmbedding, Type: embedding, Nullable: true},
		{Name: colError, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: colDecodeMS, Type: arrow.PrimitiveTypes.Float32},
		{Name: colModelMS, Type: arrow.PrimitiveTypes.Float32},
		{Name: colExtra, Type: arrow.BinaryTypes.String, Nullable: true},
	}
}

// tableSchema builds the Arrow schema of a table with meta as its metadata.
func tableSchema(fields []arrow.Field, meta Meta, table string) *arrow.Schema {
	keys, values := meta.keyValues(table)
	md := arrow.NewMetadata(keys, values)
	return arrow.NewSchema(fields, &md)
}

// WriteRows writes rows as a results table: a zstd-compressed Parquet file
// with meta in its key-value metadata. Every non-nil Embedding must hold
// meta.EmbeddingVectors*meta.EmbeddingDim floats.
func WriteRows(w io.Writer, meta Meta, rows []Row) error {
	if err := meta.checkWritable(); err != nil {
		return fmt.Errorf("results table: %w", err)
	}
	width := meta.EmbeddingWidth()
	extras := make([]string, len(rows))
	for i, r := range rows {
		if r.Key == "" {
			return fmt.Errorf("results table: row %d has an empty key", i)
		}
		if r.Embedding != nil && len(r.Embedding) != width {
			return fmt.Errorf("results table: row %q: embedding has %d floats, meta says %d×%d = %d",
				r.Key, len(r.Embedding), meta.EmbeddingVectors, meta.EmbeddingDim, width)
		}
		if len(r.Extra) > 0 {
			js, err := json.Marshal(r.Extra)
			if err != nil {
				return fmt.Errorf("results table: row %q: extra: %w", r.Key, err)
			}
			extras[i] = string(js)
		}
	}
	writeSchema := tableSchema(resultsFields(embeddingWriteType()), meta, TableResults)
	readSchema := arrow.NewSchema(resultsFields(embeddingType(width)), nil)
	err := writeParquet(w, writeSchema, readSchema, len(rows), rowsPerGroup(width), func(b *array.RecordBuilder, lo, hi int) error {
		appendRows(b, rows[lo:hi], extras[lo:hi])
		return nil
	})
	if err != nil {
		return fmt.Errorf("results table: %w", err)
	}
	return nil
}

// appendRows adds rows to a results record builder; extras holds each
// row's "extra" JSON ("" for none).
func appendRows(b *array.RecordBuilder, rows []Row, extras []string) {
	key := b.Field(0).(*array.StringBuilder)
	source := b.Field(1).(*array.StringBuilder)
	size := b.Field(2).(*array.Int64Builder)
	sha := b.Field(3).(*array.StringBuilder)
	width := b.Field(4).(*array.Int32Builder)
	height := b.Field(5).(*array.Int32Builder)
	captions := b.Field(6).(*array.ListBuilder)
	captionValues := captions.ValueBuilder().(*array.StringBuilder)
	tokens := b.Field(7).(*array.ListBuilder)
	tokenLists := tokens.ValueBuilder().(*array.ListBuilder)
	tokenValues := tokenLists.ValueBuilder().(*array.Int32Builder)
	embedding := b.Field(8).(*array.ListBuilder)
	embeddingValues := embedding.ValueBuilder().(*array.Float32Builder)
	errs := b.Field(9).(*array.StringBuilder)
	decodeMS := b.Field(10).(*array.Float32Builder)
	modelMS := b.Field(11).(*array.Float32Builder)
	extra := b.Field(12).(*array.StringBuilder)

	for i, r := range rows {
		key.Append(r.Key)
		source.Append(r.Source)
		size.Append(r.Size)
		sha.Append(r.SHA256)
		width.Append(r.Width)
		height.Append(r.Height)
		captions.Append(true)
		captionValues.AppendValues(r.Captions, nil)
		tokens.Append(true)
		for _, ids := range r.TokenIDs {
			tokenLists.Append(true)
			tokenValues.AppendValues(ids, nil)
		}
		appendEmbedding(embedding, embeddingValues, r.Embedding)
		appendOptional(errs, r.Error)
		decodeMS.Append(r.DecodeMS)
		modelMS.Append(r.ModelMS)
		appendOptional(extra, extras[i])
	}
}

// appendEmbedding appends vec, or a null when it is nil.
func appendEmbedding(b *array.ListBuilder, values *array.Float32Builder, vec []float32) {
	if vec == nil {
		b.AppendNull()
		return
	}
	b.Append(true)
	values.AppendValues(vec, nil)
}

// appendOptional appends s, or a null when it is empty.
func appendOptional(b *array.StringBuilder, s string) {
	if s == "" {
		b.AppendNull()
		return
	}
	b.Append(s)
}

// ReadRows reads a whole results table. It fails, naming the key or column,
// when the schema version is unknown or a required column is missing or of
// the wrong type.
func ReadRows(r io.ReaderAt, size int64) (Meta, []Row, error) {
	f, err := openParquet(r, size)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("results table: %w", err)
	}
	defer f.Close()
	meta, _, err := parseMeta(f.lookupMeta, TableResults)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("results table: %w", err)
	}
	fields := resultsFields(embeddingType(meta.EmbeddingWidth()))
	cols := make([]int, len(fields))
	for i, fd := range fields {
		if cols[i], err = f.column(fd.Name, fd.Type); err != nil {
			return Meta{}, nil, fmt.Errorf("results table: %w", err)
		}
	}
	rows := make([]Row, 0, f.pq.NumRows())
	err = f.records(context.Background(), cols, func(rec arrow.RecordBatch) error {
		var err error
		rows, err = decodeRows(rec, rows)
		return err
	})
	if err != nil {
		return Meta{}, nil, fmt.Errorf("results table: %w", err)
	}
	return meta, rows, nil
}

// decodeRows appends the rows of a results record batch (columns in
// resultsFields order) to rows.
func decodeRows(rec arrow.RecordBatch, rows []Row) ([]Row, error) {
	key := rec.Column(0).(*array.String)
	source := rec.Column(1).(*array.String)
	size := rec.Column(2).(*array.Int64)
	sha := rec.Column(3).(*array.String)
	width := rec.Column(4).(*array.Int32)
	height := rec.Column(5).(*array.Int32)
	captions := rec.Column(6).(*array.List)
	captionValues := captions.ListValues().(*array.String)
	tokens := rec.Column(7).(*array.List)
	tokenLists := tokens.ListValues().(*array.List)
	tokenValues := tokenLists.ListValues().(*array.Int32)
	embedding := rec.Column(8)
	errs := rec.Column(9).(*array.String)
	decodeMS := rec.Column(10).(*array.Float32)
	modelMS := rec.Column(11).(*array.Float32)
	extra := rec.Column(12).(*array.String)

	for i := 0; i < int(rec.NumRows()); i++ {
		r := Row{
			Key:      key.Value(i),
			Source:   source.Value(i),
			Size:     size.Value(i),
			SHA256:   sha.Value(i),
			Width:    width.Value(i),
			Height:   height.Value(i),
			DecodeMS: decodeMS.Value(i),
			ModelMS:  modelMS.Value(i),
		}
		if start, end := captions.ValueOffsets(i); end > start {
			r.Captions = make([]string, 0, end-start)
			for j := start; j < end; j++ {
				r.Captions = append(r.Captions, captionValues.Value(int(j)))
			}
		}
		if start, end := tokens.ValueOffsets(i); end > start {
			r.TokenIDs = make([][]int32, 0, end-start)
			for j := start; j < end; j++ {
				s, e := tokenLists.ValueOffsets(int(j))
				r.TokenIDs = append(r.TokenIDs, append([]int32{}, tokenValues.Int32Values()[s:e]...))
			}
		}
		if vec := embeddingAt(embedding, i); vec != nil {
			r.Embedding = append([]float32{}, vec...)
		}
		if errs.IsValid(i) {
			r.Error = errs.Value(i)
		}
		if extra.IsValid(i) {
			if err := json.Unmarshal([]byte(extra.Value(i)), &r.Extra); err != nil {
				return rows, fmt.Errorf("row %q: column %q: %w", r.Key, colExtra, err)
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// embeddingAt returns row i of an embedding column (a FixedSizeList, or a
// list in tables without embeddings) as a view into the array's buffer, or
// nil when the row is null.
func embeddingAt(a arrow.Array, i int) []float32 {
	if a.IsNull(i) {
		return nil
	}
	var start, end int64
	var values arrow.Array
	switch a := a.(type) {
	case *array.FixedSizeList:
		start, end = a.ValueOffsets(i)
		values = a.ListValues()
	case *array.List:
		start, end = a.ValueOffsets(i)
		values = a.ListValues()
	default:
		return nil
	}
	return values.(*array.Float32).Float32Values()[start:end]
}
