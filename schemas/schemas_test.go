package schemas

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/parquet-go/parquet-go"
)

func testMeta(vectors, dim int) Meta {
	return Meta{
		Model:              "Salesforce/blip2-opt-2.7b",
		ModelRevision:      "51572668da0eb669e01a189dc22abe6088589a24",
		Task:               "both",
		GenerationSettings: `{"max_new_tokens":30,"num_beams":1}`,
		EmbeddingKind:      "itc_image",
		EmbeddingVectors:   vectors,
		EmbeddingDim:       dim,
		Normalized:         true,
		JobID:              "job-ü-1",
		ShardID:            "shard-00042",
		CreatedAt:          time.Date(2026, 11, 26, 21, 5, 7, 123456789, time.UTC),
	}
}

// testRows covers every field: full rows, failed rows with nulls and empty
// lists, unicode, empty and non-empty extras.
func testRows(width int) []Row {
	emb := func(seed float32) []float32 {
		if width == 0 {
			return nil
		}
		v := make([]float32, width)
		for i := range v {
			v[i] = seed + float32(i)/8
		}
		return v
	}
	return []Row{
		{
			Key: "images/cat.jpg", Source: "s3://bucket/images/cat.jpg", Size: 123456,
			SHA256: strings.Repeat("ab", 32), Width: 640, Height: 480,
			Captions:  []string{"a cat on a mat", "a small cat"},
			TokenIDs:  [][]int32{{2, 10, 4758, 15, 10}, {2, 10, 650}},
			Embedding: emb(1), DecodeMS: 3.25, ModelMS: 812.5,
			Extra: map[string]string{"license": "CC-BY", "author": "Zoë"},
		},
		{
			Key: "images/broken.png", Source: "/data/images/broken.png", Size: 17,
			SHA256: strings.Repeat("0f", 32), Error: "decode: png: invalid format", DecodeMS: 0.5,
		},
		{
			Key: "画像/猫 🐈.webp", Source: "file:///data/画像/猫 🐈.webp", Size: 1,
			SHA256: strings.Repeat("99", 32), Width: 1, Height: 2,
			Captions: []string{"猫 — café «naïve»", ""}, TokenIDs: [][]int32{{}, {7}},
			Embedding: emb(-3), Extra: map[string]string{},
		},
	}
}

// canonical is r as read back: empty lists and maps become nil.
func canonical(r Row) Row {
	if len(r.Captions) == 0 {
		r.Captions = nil
	}
	if len(r.TokenIDs) == 0 {
		r.TokenIDs = nil
	}
	if len(r.Extra) == 0 {
		r.Extra = nil
	}
	return r
}

func writeRows(t testing.TB, meta Meta, rows []Row) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteRows(&buf, meta, rows); err != nil {
		t.Fatalf("WriteRows: %v", err)
	}
	return buf.Bytes()
}

func TestRowsRoundTrip(t *testing.T) {
	for _, shape := range [][2]int{{1, 4}, {3, 2}, {0, 0}} {
		t.Run(fmt.Sprintf("embedding_%dx%d", shape[0], shape[1]), func(t *testing.T) {
			meta := testMeta(shape[0], shape[1])
			rows := testRows(shape[0] * shape[1])
			data := writeRows(t, meta, rows)

			gotMeta, got, err := ReadRows(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatalf("ReadRows: %v", err)
			}
			wantMeta := meta
			wantMeta.SchemaVersion = Version
			if !gotMeta.CreatedAt.Equal(wantMeta.CreatedAt) {
				t.Errorf("CreatedAt = %v, want %v", gotMeta.CreatedAt, wantMeta.CreatedAt)
			}
			gotMeta.CreatedAt, wantMeta.CreatedAt = time.Time{}, time.Time{}
			if gotMeta != wantMeta {
				t.Errorf("meta = %+v\nwant %+v", gotMeta, wantMeta)
			}
			if len(got) != len(rows) {
				t.Fatalf("read %d rows, want %d", len(got), len(rows))
			}
			for i := range rows {
				if want := canonical(rows[i]); !reflect.DeepEqual(got[i], want) {
					t.Errorf("row %d:\n got %#v\nwant %#v", i, got[i], want)
				}
			}
		})
	}
}

func TestRowsManyRowGroups(t *testing.T) {
	const n = 9000
	meta := testMeta(1, 4)
	rows := make([]Row, n)
	for i := range rows {
		rows[i] = Row{Key: fmt.Sprintf("k%05d", i), Size: int64(i), Embedding: []float32{float32(i), 0, 0, 1}}
	}
	data := writeRows(t, meta, rows)
	_, got, err := ReadRows(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("read %d rows, want %d", len(got), n)
	}
	for i, r := range got {
		if r.Key != rows[i].Key || r.Size != int64(i) || r.Embedding[0] != float32(i) {
			t.Fatalf("row %d = %+v, want key %s", i, r, rows[i].Key)
		}
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if groups := len(f.RowGroups()); groups != 3 {
		t.Errorf("%d rows written in %d row groups, want 3 of at most %d", n, groups, maxRowGroupRows)
	}
}

// independentRow maps the results table for github.com/parquet-go/parquet-go.
type independentRow struct {
	Key       string    `parquet:"key"`
	Source    string    `parquet:"source"`
	Size      int64     `parquet:"size"`
	SHA256    string    `parquet:"sha256"`
	Width     int32     `parquet:"width"`
	Height    int32     `parquet:"height"`
	Captions  []string  `parquet:"captions,list"`
	TokenIDs  [][]int32 `parquet:"token_ids,list"`
	Embedding []float32 `parquet:"embedding,list,optional"`
	Error     *string   `parquet:"error,optional"`
	DecodeMS  float32   `parquet:"decode_ms"`
	ModelMS   float32   `parquet:"model_ms"`
	Extra     *string   `parquet:"extra,optional"`
}

func TestIndependentReaderSeesResults(t *testing.T) {
	meta := testMeta(2, 3)
	rows := testRows(6)
	data := writeRows(t, meta, rows)

	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("parquet-go open: %v", err)
	}
	var columns []string
	for _, fd := range f.Schema().Fields() {
		columns = append(columns, fd.Name())
	}
	wantColumns := []string{"key", "source", "size", "sha256", "width", "height", "captions",
		"token_ids", "embedding", "error", "decode_ms", "model_ms", "extra"}
	if !reflect.DeepEqual(columns, wantColumns) {
		t.Errorf("columns = %q, want %q", columns, wantColumns)
	}
	if f.NumRows() != int64(len(rows)) {
		t.Errorf("NumRows = %d, want %d", f.NumRows(), len(rows))
	}
	for key, want := range map[string]string{
		MetaSchemaVersion: Version, MetaTable: TableResults, MetaModel: meta.Model,
		MetaEmbeddingVectors: "2", MetaEmbeddingDim: "3", MetaNormalized: "true",
		MetaCreatedAt: "2026-11-26T21:05:07.123456789Z", MetaShardID: "shard-00042",
	} {
		if got, ok := f.Lookup(key); !ok || got != want {
			t.Errorf("metadata %s = %q (present %v), want %q", key, got, ok, want)
		}
	}

	got := make([]independentRow, len(rows)+1)
	n, err := parquet.NewGenericReader[independentRow](f).Read(got)
	if n != len(rows) || (err != nil && err.Error() != "EOF") {
		t.Fatalf("parquet-go read %d rows, err %v; want %d", n, err, len(rows))
	}
	for i, want := range rows {
		g := got[i]
		if g.Key != want.Key || g.Source != want.Source || g.Size != want.Size || g.SHA256 != want.SHA256 ||
			g.Width != want.Width || g.Height != want.Height || g.DecodeMS != want.DecodeMS || g.ModelMS != want.ModelMS {
			t.Errorf("row %d scalars = %+v, want %+v", i, g, want)
		}
		if len(g.Captions) != len(want.Captions) || (len(want.Captions) > 0 && !reflect.DeepEqual(g.Captions, want.Captions)) {
			t.Errorf("row %d captions = %q, want %q", i, g.Captions, want.Captions)
		}
		if len(g.TokenIDs) != len(want.TokenIDs) {
			t.Errorf("row %d token ids = %v, want %v", i, g.TokenIDs, want.TokenIDs)
		}
		for j := range min(len(g.TokenIDs), len(want.TokenIDs)) {
			if len(g.TokenIDs[j]) != len(want.TokenIDs[j]) || (len(want.TokenIDs[j]) > 0 && !reflect.DeepEqual(g.TokenIDs[j], want.TokenIDs[j])) {
				t.Errorf("row %d token ids[%d] = %v, want %v", i, j, g.TokenIDs[j], want.TokenIDs[j])
			}
		}
		if !reflect.DeepEqual(g.Embedding, want.Embedding) && (len(g.Embedding) != 0 || want.Embedding != nil) {
			t.Errorf("row %d embedding = %v, want %v", i, g.Embedding, want.Embedding)
		}
		if (g.Error == nil) != (want.Error == "") || (g.Error != nil && *g.Error != want.Error) {
			t.Errorf("row %d error = %v, want %q (null when empty)", i, g.Error, want.Error)
		}
		if (g.Extra == nil) != (len(want.Extra) == 0) {
			t.Errorf("row %d extra = %v, want null exactly when empty (%v)", i, g.Extra, want.Extra)
		}
	}
	if got[0].Extra == nil || *got[0].Extra != `{"author":"Zoë","license":"CC-BY"}` {
		t.Errorf("row 0 extra JSON = %v", got[0].Extra)
	}
}

func TestEmbeddingsRoundTripAndStreamingScan(t *testing.T) {
	const n = 5000
	meta := testMeta(2, 4)
	meta.Task = "embed"
	names := make([]string, n)
	vecs := make([][]float32, n)
	for i := range names {
		names[i] = fmt.Sprintf("img/%05d.jpg", i)
		if i%7 == 3 {
			continue // failed input: null embedding
		}
		vecs[i] = make([]float32, 8)
		for j := range vecs[i] {
			vecs[i][j] = float32(i) + float32(j)/10
		}
	}
	var buf bytes.Buffer
	if err := WriteEmbeddings(&buf, meta, names, vecs); err != nil {
		t.Fatalf("WriteEmbeddings: %v", err)
	}
	data := buf.Bytes()

	var keys []string
	batches := 0
	gotMeta, err := ScanEmbeddings(bytes.NewReader(data), int64(len(data)), func(b EmbeddingBatch) error {
		batches++
		if len(b.Keys) != len(b.Vectors) {
			return fmt.Errorf("batch has %d keys and %d vectors", len(b.Keys), len(b.Vectors))
		}
		for i, k := range b.Keys {
			var idx int
			if _, err := fmt.Sscanf(k, "img/%05d.jpg", &idx); err != nil {
				return err
			}
			if !reflect.DeepEqual(b.Vectors[i], vecs[idx]) {
				return fmt.Errorf("%s: vector %v, want %v", k, b.Vectors[i], vecs[idx])
			}
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ScanEmbeddings: %v", err)
	}
	if gotMeta.Model != meta.Model || gotMeta.EmbeddingDim != 4 || gotMeta.EmbeddingVectors != 2 || !gotMeta.Normalized || gotMeta.Task != "embed" {
		t.Errorf("meta = %+v", gotMeta)
	}
	wantKeys := 0
	for i, v := range vecs {
		if v != nil {
			if keys[wantKeys] != names[i] {
				t.Fatalf("scan key %d = %s, want %s (file order)", wantKeys, keys[wantKeys], names[i])
			}
			wantKeys++
		}
	}
	if len(keys) != wantKeys {
		t.Fatalf("scanned %d embeddings, want %d non-null", len(keys), wantKeys)
	}
	if batches < n/scanBatchRows {
		t.Errorf("scan delivered %d batches for %d rows, want batches of at most %d rows", batches, n, scanBatchRows)
	}

	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	type embRow struct {
		Key       string    `parquet:"key"`
		Embedding []float32 `parquet:"embedding,list,optional"`
	}
	got := make([]embRow, n)
	if read, err := parquet.NewGenericReader[embRow](f).Read(got); read != n {
		t.Fatalf("parquet-go read %d rows (%v), want %d", read, err, n)
	}
	for i := range got {
		if got[i].Key != names[i] || (vecs[i] != nil && !reflect.DeepEqual(got[i].Embedding, vecs[i])) {
			t.Fatalf("parquet-go row %d = %+v, want %s %v", i, got[i], names[i], vecs[i])
		}
	}
}

func TestScanResultsTable(t *testing.T) {
	rows := testRows(6)
	data := writeRows(t, testMeta(2, 3), rows)
	var keys []string
	_, err := ScanEmbeddings(bytes.NewReader(data), int64(len(data)), func(b EmbeddingBatch) error {
		for i, k := range b.Keys {
			keys = append(keys, k)
			if len(b.Vectors[i]) != 6 {
				return fmt.Errorf("%s: %d floats, want 6", k, len(b.Vectors[i]))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("ScanEmbeddings on a results table: %v", err)
	}
	if want := []string{rows[0].Key, rows[2].Key}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("scanned keys %q, want %q (the row without embedding skipped)", keys, want)
	}
}

func TestScanStopsOnCallbackError(t *testing.T) {
	data := writeRows(t, testMeta(2, 3), testRows(6))
	stop := errors.New("stop")
	calls := 0
	_, err := ScanEmbeddings(bytes.NewReader(data), int64(len(data)), func(EmbeddingBatch) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Fatalf("ScanEmbeddings = %v after %d calls, want the callback's error after 1", err, calls)
	}
}

// writeCustomTable writes one row of a table with the given columns and
// metadata, for validation tests.
func writeCustomTable(t *testing.T, fields []arrow.Field, kv map[string]string) []byte {
	t.Helper()
	var keys, values []string
	for k, v := range kv {
		keys = append(keys, k)
		values = append(values, v)
	}
	md := arrow.NewMetadata(keys, values)
	var buf bytes.Buffer
	schema := arrow.NewSchema(fields, &md)
	err := writeParquet(&buf, schema, schema, 1, 1, func(b *array.RecordBuilder, lo, hi int) error {
		for i, fb := range b.Fields() {
			if b.Schema().Field(i).Nullable {
				fb.AppendNull()
			} else {
				fb.AppendEmptyValue()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("write custom table: %v", err)
	}
	return buf.Bytes()
}

func validMetaKV(table string, vectors, dim int) map[string]string {
	keys, values := testMeta(vectors, dim).keyValues(table)
	kv := map[string]string{}
	for i := range keys {
		kv[keys[i]] = values[i]
	}
	return kv
}

func withKV(kv map[string]string, key, value string) map[string]string {
	out := map[string]string{}
	for k, v := range kv {
		out[k] = v
	}
	if value == "" {
		delete(out, key)
	} else {
		out[key] = value
	}
	return out
}

func withoutField(fields []arrow.Field, name string) []arrow.Field {
	var out []arrow.Field
	for _, f := range fields {
		if f.Name != name {
			out = append(out, f)
		}
	}
	return out
}

func withFieldType(fields []arrow.Field, name string, typ arrow.DataType) []arrow.Field {
	out := append([]arrow.Field(nil), fields...)
	for i := range out {
		if out[i].Name == name {
			out[i].Type = typ
		}
	}
	return out
}

func TestReadValidation(t *testing.T) {
	results := validMetaKV(TableResults, 1, 4)
	embeddings := validMetaKV(TableEmbeddings, 1, 4)
	tests := []struct {
		name    string
		fields  []arrow.Field
		kv      map[string]string
		scan    bool   // use ScanEmbeddings instead of ReadRows
		wantErr string // substring naming the key or column
	}{
		{"valid results", resultsFields(embeddingType(4)), results, false, ""},
		{"valid embeddings scan", embeddingsFields(embeddingType(4)), embeddings, true, ""},
		{"newer version", resultsFields(embeddingType(4)), withKV(results, MetaSchemaVersion, "2"), false, MetaSchemaVersion},
		{"newer version scan", embeddingsFields(embeddingType(4)), withKV(embeddings, MetaSchemaVersion, "2"), true, MetaSchemaVersion},
		{"no version", resultsFields(embeddingType(4)), withKV(results, MetaSchemaVersion, ""), false, MetaSchemaVersion},
		{"no table kind", resultsFields(embeddingType(4)), withKV(results, MetaTable, ""), false, MetaTable},
		{"embeddings table as results", embeddingsFields(embeddingType(4)), embeddings, false, MetaTable},
		{"bad dimension", resultsFields(embeddingType(4)), withKV(results, MetaEmbeddingDim, "four"), false, MetaEmbeddingDim},
		{"bad created_at", resultsFields(embeddingType(4)), withKV(results, MetaCreatedAt, "yesterday"), false, MetaCreatedAt},
		{"missing sha256", withoutField(resultsFields(embeddingType(4)), colSHA256), results, false, `"sha256"`},
		{"missing key", withoutField(embeddingsFields(embeddingType(4)), colKey), embeddings, true, `"key"`},
		{"missing embedding", withoutField(embeddingsFields(embeddingType(4)), colEmbedding), embeddings, true, `"embedding"`},
		{"embedding width differs from metadata", resultsFields(embeddingType(5)), results, false, `"embedding"`},
		{"wrong size type", withFieldType(resultsFields(embeddingType(4)), colSize, arrow.PrimitiveTypes.Int32), results, false, `"size"`},
		{"scan of a table without embeddings", resultsFields(embeddingType(0)), validMetaKV(TableResults, 0, 0), true, MetaEmbeddingDim},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := writeCustomTable(t, tc.fields, tc.kv)
			var err error
			if tc.scan {
				_, err = ScanEmbeddings(bytes.NewReader(data), int64(len(data)), func(EmbeddingBatch) error { return nil })
			} else {
				_, _, err = ReadRows(bytes.NewReader(data), int64(len(data)))
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one naming %s", err, tc.wantErr)
			}
		})
	}
}

func TestReadRejectsNonParquet(t *testing.T) {
	data := []byte("definitely not parquet")
	if _, _, err := ReadRows(bytes.NewReader(data), int64(len(data))); err == nil {
		t.Fatal("ReadRows accepted garbage")
	}
}

func TestWriteValidation(t *testing.T) {
	meta := testMeta(1, 4)
	tests := []struct {
		name    string
		write   func(*bytes.Buffer) error
		wantErr string
	}{
		{"embedding width", func(w *bytes.Buffer) error {
			return WriteRows(w, meta, []Row{{Key: "bad.jpg", Embedding: []float32{1, 2}}})
		}, "bad.jpg"},
		{"empty key", func(w *bytes.Buffer) error { return WriteRows(w, meta, []Row{{}}) }, "empty key"},
		{"other schema version", func(w *bytes.Buffer) error {
			m := meta
			m.SchemaVersion = "2"
			return WriteRows(w, m, nil)
		}, "SchemaVersion"},
		{"half an embedding shape", func(w *bytes.Buffer) error { return WriteRows(w, testMeta(0, 4), nil) }, "0×4"},
		{"names and vectors differ", func(w *bytes.Buffer) error {
			return WriteEmbeddings(w, meta, []string{"a", "b"}, [][]float32{{1, 2, 3, 4}})
		}, "2 names but 1 vectors"},
		{"embeddings width", func(w *bytes.Buffer) error {
			return WriteEmbeddings(w, meta, []string{"short.jpg"}, [][]float32{{1}})
		}, "short.jpg"},
		{"embeddings without shape", func(w *bytes.Buffer) error {
			return WriteEmbeddings(w, testMeta(0, 0), []string{"a"}, [][]float32{nil})
		}, "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := tc.write(&buf)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestEmptyTables(t *testing.T) {
	data := writeRows(t, testMeta(1, 4), nil)
	meta, rows, err := ReadRows(bytes.NewReader(data), int64(len(data)))
	if err != nil || len(rows) != 0 || meta.EmbeddingDim != 4 {
		t.Fatalf("empty results table: meta %+v, %d rows, %v", meta, len(rows), err)
	}
	var buf bytes.Buffer
	if err := WriteEmbeddings(&buf, testMeta(1, 4), nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ScanEmbeddings(bytes.NewReader(buf.Bytes()), int64(buf.Len()), func(EmbeddingBatch) error {
		return errors.New("callback on an empty table")
	}); err != nil {
		t.Fatal(err)
	}
}

func TestArrowReadersSeeFixedSizeList(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"results", writeRows(t, testMeta(2, 3), testRows(6))},
		{"embeddings", func() []byte {
			var buf bytes.Buffer
			if err := WriteEmbeddings(&buf, testMeta(2, 3), []string{"a", "b"}, [][]float32{nil, make([]float32, 6)}); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := openParquet(bytes.NewReader(tc.data), int64(len(tc.data)))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			idx := f.schema.FieldIndices(colEmbedding)
			if len(idx) != 1 {
				t.Fatalf("no embedding column in %s", f.schema)
			}
			typ, ok := f.schema.Field(idx[0]).Type.(*arrow.FixedSizeListType)
			if !ok || typ.Len() != 6 || typ.Elem().ID() != arrow.FLOAT32 || !f.schema.Field(idx[0]).Nullable {
				t.Fatalf("embedding column type %s, want nullable fixed_size_list<float32>[6]", f.schema.Field(idx[0]).Type)
			}
		})
	}
}

// benchRows returns n results rows with a caption and a random embedding of
// width floats (random, so compression is as poor as on real embeddings).
func benchRows(n, width int) []Row {
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([]Row, n)
	for i := range rows {
		emb := make([]float32, width)
		for j := range emb {
			emb[j] = float32(rng.NormFloat64())
		}
		rows[i] = Row{
			Key: fmt.Sprintf("images/%08d.jpg", i), Source: fmt.Sprintf("s3://bucket/images/%08d.jpg", i),
			Size: 100000 + int64(i), SHA256: strings.Repeat("5a", 32), Width: 640, Height: 480,
			Captions:  []string{"a photograph of a dog running on the beach"},
			TokenIDs:  [][]int32{{2, 10, 1345, 9, 10, 2335, 2119, 15, 5, 4105}},
			Embedding: emb, DecodeMS: 4, ModelMS: 300,
		}
	}
	return rows
}

var benchShapes = []struct {
	name         string
	vectors, dim int
}{
	{"qformer_mean_1x768", 1, 768},
	{"itc_image_32x256", 32, 256},
}

func BenchmarkWriteRows(b *testing.B) {
	const n = 2048
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			rows := benchRows(n, shape.vectors*shape.dim)
			meta := testMeta(shape.vectors, shape.dim)
			var buf bytes.Buffer
			b.ResetTimer()
			for b.Loop() {
				buf.Reset()
				if err := WriteRows(&buf, meta, rows); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(buf.Len())/n, "file_bytes/row")
		})
	}
}

func BenchmarkScanEmbeddings(b *testing.B) {
	const n = 8192
	for _, shape := range benchShapes {
		b.Run(shape.name, func(b *testing.B) {
			width := shape.vectors * shape.dim
			names := make([]string, n)
			vecs := make([][]float32, n)
			for i, r := range benchRows(n, width) {
				names[i], vecs[i] = r.Key, r.Embedding
			}
			var buf bytes.Buffer
			if err := WriteEmbeddings(&buf, testMeta(shape.vectors, shape.dim), names, vecs); err != nil {
				b.Fatal(err)
			}
			data := buf.Bytes()
			b.SetBytes(int64(n * width * 4))
			b.ResetTimer()
			for b.Loop() {
				var sum float32
				_, err := ScanEmbeddings(bytes.NewReader(data), int64(len(data)), func(batch EmbeddingBatch) error {
					for _, v := range batch.Vectors {
						sum += v[0]
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
