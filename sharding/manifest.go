package sharding

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"blipflow/storage"
)

// OpenStore opens the store at a location (a folder, s3://bucket/prefix).
type OpenStore func(ctx context.Context, location string) (storage.Store, error)

// ManifestOptions say which manifest columns name the images.
type ManifestOptions struct {
	// URLColumn holds where each image is read: an http(s) URL, an
	// absolute location (s3://bucket/key, /path) or a key under Base
	// (default: "url" when the manifest has it, else the key column).
	URLColumn string
	// KeyColumn holds each row's key, the join column of the output
	// (default: "key" when the manifest has it, else the URL column).
	KeyColumn string
	// Base is the location relative keys are read under (default: the
	// manifest's folder).
	Base string
	// MaxBytes caps the manifest file's size (0: DefaultMaxManifestBytes);
	// a larger manifest is refused before it is read.
	MaxBytes int64
}

// DefaultMaxManifestBytes is the default cap on a manifest's size: 1 GiB,
// about ten million rows of URLs with a few columns.
const DefaultMaxManifestBytes = 1 << 30

// Root returns the location a manifest's local paths and s3:// locations
// must be under by default: Options.Base when set, else the manifest's
// own folder or prefix.
func (in ManifestInput) Root() (string, error) {
	if in.Options.Base != "" {
		return in.Options.Base, nil
	}
	return parentLocation(in.Location)
}

// ManifestInput lists the rows of a CSV (header line first), JSON Lines or
// Parquet manifest, chosen by the file extension (.csv, .jsonl or .ndjson,
// .parquet). Each row is one image; the columns other than the key and
// URL columns are carried through to its output row (Item.Extra). A key
// repeated with the same source is listed once; repeated with another
// source, it is an error.
type ManifestInput struct {
	// Location is the manifest file (a path, file:// or s3:// location).
	Location string
	Options  ManifestOptions
	// Open opens the store holding the manifest.
	Open OpenStore
}

// URL implements Input.
func (in ManifestInput) URL() string { return in.Location }

// Unfiltered implements Unfiltered: every row is an image.
func (ManifestInput) Unfiltered() {}

// IsManifest reports whether location names a manifest file by its
// extension.
func IsManifest(location string) bool {
	_, err := manifestFormat(location)
	return err == nil
}

// manifestFormat returns "csv", "jsonl" or "parquet" from the extension.
func manifestFormat(location string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(location)); ext {
	case ".csv":
		return "csv", nil
	case ".jsonl", ".ndjson":
		return "jsonl", nil
	case ".parquet":
		return "parquet", nil
	default:
		return "", fmt.Errorf("manifest %s: unknown extension %q (want .csv, .jsonl, .ndjson or .parquet)", location, ext)
	}
}

// manifestRow is one row: its position (line or row number, 1-based) and
// its non-null values.
type manifestRow struct {
	pos    int
	values map[string]string
}

// List implements Input.
func (in ManifestInput) List(ctx context.Context, fn func(Item) error) error {
	format, err := manifestFormat(in.Location)
	if err != nil {
		return err
	}
	body, err := in.open(ctx)
	if err != nil {
		return err
	}
	defer body.Close()
	base := in.Options.Base
	if base == "" {
		if base, err = parentLocation(in.Location); err != nil {
			return err
		}
	}
	lister := &manifestLister{location: in.Location, opts: in.Options, base: base, fn: fn, seen: map[string]manifestEntry{}}
	switch format {
	case "csv":
		err = readCSV(body, lister)
	case "jsonl":
		err = readJSONL(body, lister)
	default:
		var data []byte
		if data, err = io.ReadAll(body); err == nil {
			err = readParquet(ctx, data, lister)
		}
	}
	if err != nil {
		return fmt.Errorf("manifest %s: %w", in.Location, err)
	}
	return nil
}

// open streams the manifest: CSV and JSON Lines are parsed as they are
// read (one GET, one row at a time); Parquet, which is read from its
// footer, is read whole.
func (in ManifestInput) open(ctx context.Context) (io.ReadCloser, error) {
	root, key, err := SplitLocation(in.Location)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	store, err := in.Open(ctx, root)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", in.Location, err)
	}
	limit := in.Options.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxManifestBytes
	}
	obj, err := store.Stat(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", in.Location, err)
	}
	if obj.Size > limit {
		return nil, fmt.Errorf("manifest %s: %d bytes is over the %d-byte limit (--max-manifest-bytes)", in.Location, obj.Size, limit)
	}
	body, err := storage.OpenStream(ctx, store, key)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", in.Location, err)
	}
	return body, nil
}

// parentLocation returns the folder or prefix holding location.
func parentLocation(location string) (string, error) {
	if !strings.Contains(location, "://") {
		abs, err := filepath.Abs(location)
		if err != nil {
			return "", fmt.Errorf("manifest %s: %w", location, err)
		}
		return filepath.Dir(abs), nil
	}
	i := strings.LastIndex(location, "/")
	if i < len("s3://") {
		return "", fmt.Errorf("manifest %s: no parent folder", location)
	}
	return location[:i], nil
}

// manifestEntry is where a key was first seen.
type manifestEntry struct {
	source string
	pos    int
}

// manifestLister turns rows into items once it knows the columns.
type manifestLister struct {
	location string
	opts     ManifestOptions
	base     string
	fn       func(Item) error
	keyCol   string // "" until columns is called
	src      string
	seen     map[string]manifestEntry
}

// columns picks the key and URL columns from the manifest's columns.
func (l *manifestLister) columns(names []string) error {
	has := func(name string) bool { return slices.Contains(names, name) }
	for _, explicit := range []string{l.opts.URLColumn, l.opts.KeyColumn} {
		if explicit != "" && !has(explicit) {
			return fmt.Errorf("no column %q (columns: %s)", explicit, strings.Join(names, ", "))
		}
	}
	l.src, l.keyCol = l.opts.URLColumn, l.opts.KeyColumn
	if l.keyCol == "" && has("key") {
		l.keyCol = "key"
	}
	if l.src == "" && has("url") {
		l.src = "url"
	}
	if l.src == "" {
		l.src = l.keyCol
	}
	if l.keyCol == "" {
		l.keyCol = l.src
	}
	if l.src == "" {
		return fmt.Errorf("no url or key column (columns: %s); name one with --url-column or --key-column", strings.Join(names, ", "))
	}
	return nil
}

// row lists one manifest row.
func (l *manifestLister) row(r manifestRow) error {
	source := r.values[l.src]
	if source == "" {
		return fmt.Errorf("row %d: empty %q", r.pos, l.src)
	}
	key := r.values[l.keyCol]
	if key == "" {
		return fmt.Errorf("row %d: empty %q", r.pos, l.keyCol)
	}
	switch {
	case hasScheme(source):
		// Any other scheme stays as given: the worker refuses it in the
		// row's error instead of failing the whole manifest.
		source = Resolve(l.base, source)
	case !IsAbsolute(source) && !fs.ValidPath(source):
		return fmt.Errorf("row %d: %q %q is neither a URL, an absolute location nor a relative key without '.' or '..' elements", r.pos, l.src, source)
	default:
		source = Resolve(l.base, source)
	}
	if first, ok := l.seen[key]; ok {
		if first.source != source {
			return fmt.Errorf("row %d: key %q repeats row %d with another source (%s, was %s)", r.pos, key, first.pos, source, first.source)
		}
		return nil
	}
	l.seen[key] = manifestEntry{source: source, pos: r.pos}
	var extra map[string]string
	for name, value := range r.values {
		if name == l.src || name == l.keyCol {
			continue
		}
		if extra == nil {
			extra = map[string]string{}
		}
		extra[name] = value
	}
	return l.fn(Item{Key: key, Source: source, Extra: extra})
}

// readCSV reads a CSV manifest with a header line.
func readCSV(src io.Reader, l *manifestLister) error {
	br := bufio.NewReader(src)
	if bom, err := br.Peek(3); err == nil && string(bom) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	r := csv.NewReader(br)
	header, err := r.Read()
	if err != nil {
		return fmt.Errorf("csv header: %w", err)
	}
	header = slices.Clone(header)
	if err := l.columns(header); err != nil {
		return err
	}
	for {
		record, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("csv: %w", err)
		}
		line, _ := r.FieldPos(0)
		values := make(map[string]string, len(header))
		for i, name := range header {
			values[name] = record[i]
		}
		if err := l.row(manifestRow{pos: line, values: values}); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
}

// readJSONL reads one JSON object per line; the first object's fields are
// the columns. Strings are taken as they are, other values as JSON.
func readJSONL(src io.Reader, l *manifestLister) error {
	line := 0
	sc := bufio.NewScanner(src)
	sc.Buffer(make([]byte, 64<<10), maxManifestLine)
	for sc.Scan() {
		raw := sc.Bytes()
		line++
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			continue
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		values := make(map[string]string, len(fields))
		for name, v := range fields {
			var s string
			switch {
			case string(v) == "null":
				continue
			case json.Unmarshal(v, &s) == nil:
				values[name] = s
			default:
				values[name] = string(v)
			}
		}
		if l.src == "" {
			if err := l.columns(slices.Sorted(maps.Keys(fields))); err != nil {
				return fmt.Errorf("line %d: %w", line, err)
			}
		}
		if err := l.row(manifestRow{pos: line, values: values}); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	return nil
}

// maxManifestLine caps one JSON Lines row.
const maxManifestLine = 16 << 20

// readParquet reads a Parquet manifest's top-level columns; values are
// written as Arrow prints them (strings as they are), nulls left out.
func readParquet(ctx context.Context, data []byte, l *manifestLister) error {
	pq, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	defer pq.Close()
	fr, err := pqarrow.NewFileReader(pq, pqarrow.ArrowReadProperties{BatchSize: 4096}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	schema, err := fr.Schema()
	if err != nil {
		return fmt.Errorf("parquet schema: %w", err)
	}
	names := make([]string, schema.NumFields())
	for i, field := range schema.Fields() {
		names[i] = field.Name
	}
	if err := l.columns(names); err != nil {
		return err
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return fmt.Errorf("parquet: %w", err)
	}
	defer rr.Release()
	pos := 0
	for rr.Next() {
		rec := rr.RecordBatch()
		for i := range int(rec.NumRows()) {
			pos++
			values := make(map[string]string, len(names))
			for c, name := range names {
				if col := rec.Column(c); !col.IsNull(i) {
					values[name] = col.ValueStr(i)
				}
			}
			if err := l.row(manifestRow{pos: pos, values: values}); err != nil {
				return err
			}
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("parquet row %d: %w", pos, err)
	}
	return nil
}
