package schemas

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Layout of written files.
const (
	// arrowSchemaKey is the metadata key under which Arrow writers store
	// the serialized Arrow schema of a Parquet file.
	arrowSchemaKey = "ARROW:schema"
	// maxRowGroupRows and rowGroupEmbeddingBytes bound a row group: the
	// writer holds one as an Arrow record, so wide embeddings get fewer
	// rows (see rowsPerGroup).
	maxRowGroupRows        = 4096
	minRowGroupRows        = 64
	rowGroupEmbeddingBytes = 64 << 20
	// scanBatchRows is the record batch size of streaming reads.
	scanBatchRows = 1024
	// readBufferBytes is the buffered-stream size of column reads.
	readBufferBytes = 1 << 20
)

// rowsPerGroup returns the row-group length for an embedding of width floats.
func rowsPerGroup(width int) int {
	if width == 0 {
		return maxRowGroupRows
	}
	return max(minRowGroupRows, min(maxRowGroupRows, rowGroupEmbeddingBytes/(4*width)))
}

// writeParquet writes n rows as a zstd-compressed Parquet file built from
// writeSchema, whose metadata becomes the file's key-value metadata. fill
// appends rows [lo, hi) to the builder; each chunk of groupRows rows is
// built, written as one row group and released before the next.
//
// readSchema is stored as the file's "ARROW:schema", the types Arrow
// readers restore. It differs from writeSchema only in the embedding column:
// pqarrow cannot write a FixedSizeList with null rows, so the column is
// written from a List array (on disk both are the same Parquet LIST) and
// read back as the FixedSizeList readSchema declares.
func writeParquet(w io.Writer, writeSchema, readSchema *arrow.Schema, n, groupRows int, fill func(b *array.RecordBuilder, lo, hi int) error) error {
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithMaxRowGroupLength(int64(groupRows)),
		parquet.WithCreatedBy("blipflow schemas v"+Version),
		// Float vectors do not repeat; dictionaries only cost time there.
		parquet.WithDictionaryFor(colEmbedding+".list.element", false),
		// nor do they compress: zstd saves about 8% on unit vectors and
		// makes reading them several times slower (Huffman decoding), so
		// the embedding column is stored plain.
		parquet.WithCompressionFor(colEmbedding+".list.element", compress.Codecs.Uncompressed),
	)
	md := writeSchema.Metadata()
	stored := arrow.NewSchema(readSchema.Fields(), nil)
	keys := append(md.Keys(), arrowSchemaKey)
	values := append(md.Values(), base64.StdEncoding.EncodeToString(flight.SerializeSchema(stored, memory.DefaultAllocator)))
	withStored := arrow.NewMetadata(keys, values)
	schema := arrow.NewSchema(writeSchema.Fields(), &withStored)
	fw, err := pqarrow.NewFileWriter(schema, w, props, pqarrow.NewArrowWriterProperties())
	if err != nil {
		return fmt.Errorf("parquet writer: %w", err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for lo := 0; lo < n; lo += groupRows {
		hi := min(lo+groupRows, n)
		if err := fill(b, lo, hi); err != nil {
			fw.Close()
			return err
		}
		rec := b.NewRecordBatch()
		err := fw.Write(rec)
		rec.Release()
		if err != nil {
			fw.Close()
			return fmt.Errorf("parquet write rows %d-%d: %w", lo, hi, err)
		}
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("parquet close: %w", err)
	}
	return nil
}

// parquetFile is an open Parquet file with its Arrow view.
type parquetFile struct {
	pq     *file.Reader
	arrow  *pqarrow.FileReader
	schema *arrow.Schema
}

// openParquet opens the Parquet file in r for streaming Arrow reads.
func openParquet(r io.ReaderAt, size int64) (*parquetFile, error) {
	props := parquet.NewReaderProperties(memory.DefaultAllocator)
	props.BufferedStreamEnabled = true
	props.BufferSize = readBufferBytes
	pq, err := file.NewParquetReader(io.NewSectionReader(r, 0, size), file.WithReadProps(props))
	if err != nil {
		return nil, fmt.Errorf("open parquet: %w", err)
	}
	fr, err := pqarrow.NewFileReader(pq, pqarrow.ArrowReadProperties{BatchSize: scanBatchRows}, memory.DefaultAllocator)
	if err != nil {
		pq.Close()
		return nil, fmt.Errorf("open parquet as arrow: %w", err)
	}
	sc, err := fr.Schema()
	if err != nil {
		pq.Close()
		return nil, fmt.Errorf("parquet arrow schema: %w", err)
	}
	return &parquetFile{pq: pq, arrow: fr, schema: sc}, nil
}

func (f *parquetFile) Close() error { return f.pq.Close() }

// lookupMeta reads the file's key-value metadata.
func (f *parquetFile) lookupMeta(key string) (string, bool) {
	v := f.pq.MetaData().KeyValueMetadata().FindValue(key)
	if v == nil {
		return "", false
	}
	return *v, true
}

// column returns the index of a required column after checking its type.
func (f *parquetFile) column(name string, want arrow.DataType) (int, error) {
	idx := f.schema.FieldIndices(name)
	if len(idx) == 0 {
		return 0, fmt.Errorf("required column %q missing", name)
	}
	got := f.schema.Field(idx[0]).Type
	if !arrow.TypeEqual(got, want) {
		return 0, fmt.Errorf("column %q has type %s, want %s", name, got, want)
	}
	return idx[0], nil
}

// records streams record batches of the given columns, in file order.
func (f *parquetFile) records(ctx context.Context, cols []int, fn func(arrow.RecordBatch) error) error {
	rr, err := f.arrow.GetRecordReader(ctx, cols, nil)
	if err != nil {
		return fmt.Errorf("parquet record reader: %w", err)
	}
	defer rr.Release()
	for rr.Next() {
		if err := fn(rr.RecordBatch()); err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil && err != io.EOF {
		return fmt.Errorf("parquet read: %w", err)
	}
	return nil
}
