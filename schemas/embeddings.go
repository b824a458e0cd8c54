package schemas

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// embeddingsFields lists the embeddings table's columns, the input's key
// and its flattened embedding, with the given type of the embedding column.
func embeddingsFields(embedding arrow.DataType) []arrow.Field {
	return []arrow.Field{
		{Name: colKey, Type: arrow.BinaryTypes.String},
		{Name: colEmbedding, Type: embedding, Nullable: true},
	}
}

// WriteEmbeddings writes an embeddings-only table: one row per input with
// its key (names[i]) and flattened embedding (vecs[i], which must hold
// meta.EmbeddingVectors*meta.EmbeddingDim floats, or be nil for an input
// that failed). Model, shape and normalisation go in the metadata.
func WriteEmbeddings(w io.Writer, meta Meta, names []string, vecs [][]float32) error {
	if err := meta.checkWritable(); err != nil {
		return fmt.Errorf("embeddings table: %w", err)
	}
	if len(names) != len(vecs) {
		return fmt.Errorf("embeddings table: %d names but %d vectors", len(names), len(vecs))
	}
	width := meta.EmbeddingWidth()
	if width == 0 {
		return fmt.Errorf("embeddings table: meta embedding shape %d×%d is empty", meta.EmbeddingVectors, meta.EmbeddingDim)
	}
	for i, v := range vecs {
		if names[i] == "" {
			return fmt.Errorf("embeddings table: row %d has an empty name", i)
		}
		if v != nil && len(v) != width {
			return fmt.Errorf("embeddings table: %q: embedding has %d floats, meta says %d×%d = %d",
				names[i], len(v), meta.EmbeddingVectors, meta.EmbeddingDim, width)
		}
	}
	writeSchema := tableSchema(embeddingsFields(embeddingWriteType()), meta, TableEmbeddings)
	readSchema := arrow.NewSchema(embeddingsFields(embeddingType(width)), nil)
	err := writeParquet(w, writeSchema, readSchema, len(names), rowsPerGroup(width), func(b *array.RecordBuilder, lo, hi int) error {
		key := b.Field(0).(*array.StringBuilder)
		embedding := b.Field(1).(*array.ListBuilder)
		values := embedding.ValueBuilder().(*array.Float32Builder)
		key.AppendValues(names[lo:hi], nil)
		for _, v := range vecs[lo:hi] {
			appendEmbedding(embedding, values, v)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("embeddings table: %w", err)
	}
	return nil
}

// EmbeddingBatch is one batch of rows streamed by ScanEmbeddings. Rows
// without an embedding are left out.
type EmbeddingBatch struct {
	// Keys are the rows' keys (input names). The strings may be kept; the
	// slice is reused by the next batch.
	Keys []string
	// Vectors[i] is the flattened embedding of Keys[i]
	// (Meta.EmbeddingVectors*Meta.EmbeddingDim floats). The vectors view the
	// reader's buffers and are valid only during the callback: copy to keep.
	Vectors [][]float32
}

// ScanEmbeddings streams the key and embedding columns of an embeddings
// table or a results table, one record batch at a time, without loading the
// whole table. It returns the table's Meta; an error from fn stops the scan
// and is returned as is.
func ScanEmbeddings(r io.ReaderAt, size int64, fn func(batch EmbeddingBatch) error) (Meta, error) {
	f, err := openParquet(r, size)
	if err != nil {
		return Meta{}, fmt.Errorf("scan embeddings: %w", err)
	}
	defer f.Close()
	meta, table, err := parseMeta(f.lookupMeta, TableEmbeddings, TableResults)
	if err != nil {
		return Meta{}, fmt.Errorf("scan embeddings: %w", err)
	}
	width := meta.EmbeddingWidth()
	if width == 0 {
		return Meta{}, fmt.Errorf("scan embeddings: %s table has no embeddings (metadata %s=%d, %s=%d)",
			table, MetaEmbeddingVectors, meta.EmbeddingVectors, MetaEmbeddingDim, meta.EmbeddingDim)
	}
	keyCol, err := f.column(colKey, arrow.BinaryTypes.String)
	if err != nil {
		return Meta{}, fmt.Errorf("scan embeddings: %w", err)
	}
	embCol, err := f.column(colEmbedding, embeddingType(width))
	if err != nil {
		return Meta{}, fmt.Errorf("scan embeddings: %w", err)
	}
	var batch EmbeddingBatch
	var fnErr error
	err = f.records(context.Background(), []int{keyCol, embCol}, func(rec arrow.RecordBatch) error {
		keys := rec.Column(0).(*array.String)
		embedding := rec.Column(1)
		batch.Keys = batch.Keys[:0]
		batch.Vectors = batch.Vectors[:0]
		for i := 0; i < int(rec.NumRows()); i++ {
			vec := embeddingAt(embedding, i)
			if vec == nil {
				continue
			}
			batch.Keys = append(batch.Keys, strings.Clone(keys.Value(i)))
			batch.Vectors = append(batch.Vectors, vec)
		}
		if len(batch.Keys) == 0 {
			return nil
		}
		fnErr = fn(batch)
		return fnErr
	})
	if fnErr != nil {
		return meta, fnErr
	}
	if err != nil {
		return Meta{}, fmt.Errorf("scan embeddings: %w", err)
	}
	return meta, nil
}
