package index

import (
	"fmt"
	"time"

	"blipflow/model/search"
	"blipflow/schemas"
)

// BuildStats describes a finished build.
type BuildStats struct {
	Tables, Images int
	Duration       time.Duration
}

// BuildFromTables builds an index at out over the embeddings of the tables
// at paths (embeddings or results tables; see search.ExpandTables for
// folders and patterns). All tables must hold embeddings of the same model
// (content fingerprint), kind and shape: one that differs is refused,
// naming both. Rows without an embedding are left out; results tables'
// sources and first captions are kept for display.
func BuildFromTables(paths []string, out string, p Params) (BuildStats, error) {
	start := time.Now()
	var first *schemas.Meta
	var firstPath string
	accept := func(path string, m schemas.Meta) error {
		if first == nil {
			first, firstPath = &m, path
			return nil
		}
		if m.ModelRevision != first.ModelRevision || m.EmbeddingKind != first.EmbeddingKind ||
			m.EmbeddingVectors != first.EmbeddingVectors || m.EmbeddingDim != first.EmbeddingDim {
			return fmt.Errorf("table %s holds %s embeddings %d×%d of model %s (checkpoint %s); table %s holds %s embeddings %d×%d of model %s (checkpoint %s): one index takes one model's embeddings",
				path, m.EmbeddingKind, m.EmbeddingVectors, m.EmbeddingDim, m.Model, m.ModelRevision,
				firstPath, first.EmbeddingKind, first.EmbeddingVectors, first.EmbeddingDim, first.Model, first.ModelRevision)
		}
		return nil
	}
	tables, err := search.OpenTables(paths, accept)
	if err != nil {
		return BuildStats{}, fmt.Errorf("index %s: %w", out, err)
	}
	defer search.CloseTables(tables)
	meta := Meta{Model: first.Model, Fingerprint: first.ModelRevision, Kind: first.EmbeddingKind,
		Vectors: first.EmbeddingVectors, Dim: first.EmbeddingDim, Normalized: first.Normalized}
	b, err := Create(out, meta, p)
	if err != nil {
		return BuildStats{}, err
	}
	width := meta.Vectors * meta.Dim
	for _, t := range tables {
		err := t.Table.Scan(true, func(batch schemas.VectorBatch) error {
			for i, key := range batch.Keys {
				var info Info
				if batch.Sources != nil {
					info.Source = batch.Sources[i]
				}
				if batch.Captions != nil {
					info.Caption = batch.Captions[i]
				}
				if err := b.Add(key, info, batch.Values[i*width:(i+1)*width]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Abort()
			return BuildStats{}, fmt.Errorf("index %s: table %s: %w", out, t.Path, err)
		}
	}
	n := b.Len()
	if err := b.Close(); err != nil {
		return BuildStats{}, err
	}
	return BuildStats{Tables: len(tables), Images: n, Duration: time.Since(start)}, nil
}
