// Package schemas defines the versioned Parquet tables blipflow writes: the
// per-shard results table (one row per image) and the embeddings-only table
// of `worker embed --out`. Both carry their Meta in the file's key-value
// metadata under "blipflow." keys and share the "key" and "embedding"
// columns, so ScanEmbeddings searches either. See README.md for the columns.
package schemas

import (
	"fmt"
	"strconv"
	"time"
)

// Version is the schema version this package writes and the only one it reads.
const Version = "1"

// Table kinds, stored under MetaTable.
const (
	TableResults    = "results"
	TableEmbeddings = "embeddings"
)

// Key-value metadata keys of both tables.
const (
	MetaSchemaVersion      = "blipflow.schema_version"
	MetaTable              = "blipflow.table"
	MetaModel              = "blipflow.model"
	MetaModelRevision      = "blipflow.model_revision"
	MetaTask               = "blipflow.task"
	MetaGenerationSettings = "blipflow.generation_settings"
	MetaEmbeddingKind      = "blipflow.embedding_kind"
	MetaEmbeddingVectors   = "blipflow.embedding_vectors"
	MetaEmbeddingDim       = "blipflow.embedding_dim"
	MetaNormalized         = "blipflow.normalized"
	MetaJobID              = "blipflow.job_id"
	MetaShardID            = "blipflow.shard_id"
	MetaCreatedAt          = "blipflow.created_at"
)

// Meta describes how a table was produced. It is stored in the Parquet
// file's key-value metadata.
type Meta struct {
	SchemaVersion      string    // Version when written; empty means Version
	Model              string    // model name or path
	ModelRevision      string    // checkpoint revision (e.g. a commit hash)
	Task               string    // caption, embed or both
	GenerationSettings string    // JSON of the caption generation settings
	EmbeddingKind      string    // e.g. "itc_image" or "qformer_mean"
	EmbeddingVectors   int       // vectors per image (0 when not embedded)
	EmbeddingDim       int       // floats per vector (0 when not embedded)
	Normalized         bool      // whether each vector has unit L2 norm
	JobID, ShardID     string    // pipeline job and shard that wrote the table
	CreatedAt          time.Time // when the table was written (stored as RFC 3339, UTC)
}

// EmbeddingWidth is the number of floats of one row's flattened embedding.
func (m Meta) EmbeddingWidth() int { return m.EmbeddingVectors * m.EmbeddingDim }

// keyValues encodes m for a table of the given kind.
func (m Meta) keyValues(table string) (keys, values []string) {
	kv := [][2]string{
		{MetaSchemaVersion, Version},
		{MetaTable, table},
		{MetaModel, m.Model},
		{MetaModelRevision, m.ModelRevision},
		{MetaTask, m.Task},
		{MetaGenerationSettings, m.GenerationSettings},
		{MetaEmbeddingKind, m.EmbeddingKind},
		{MetaEmbeddingVectors, strconv.Itoa(m.EmbeddingVectors)},
		{MetaEmbeddingDim, strconv.Itoa(m.EmbeddingDim)},
		{MetaNormalized, strconv.FormatBool(m.Normalized)},
		{MetaJobID, m.JobID},
		{MetaShardID, m.ShardID},
		{MetaCreatedAt, m.CreatedAt.UTC().Format(time.RFC3339Nano)},
	}
	for _, p := range kv {
		keys = append(keys, p[0])
		values = append(values, p[1])
	}
	return keys, values
}

// checkWritable rejects metadata this package cannot write faithfully.
func (m Meta) checkWritable() error {
	if m.SchemaVersion != "" && m.SchemaVersion != Version {
		return fmt.Errorf("meta SchemaVersion %q: this package writes version %s only", m.SchemaVersion, Version)
	}
	if m.EmbeddingVectors < 0 || m.EmbeddingDim < 0 {
		return fmt.Errorf("meta embedding shape %d×%d: negative size", m.EmbeddingVectors, m.EmbeddingDim)
	}
	if (m.EmbeddingVectors == 0) != (m.EmbeddingDim == 0) {
		return fmt.Errorf("meta embedding shape %d×%d: vectors and dim must both be zero or both positive", m.EmbeddingVectors, m.EmbeddingDim)
	}
	return nil
}

// parseMeta decodes and validates the key-value metadata of a table,
// which must be of the wanted kinds.
func parseMeta(lookup func(key string) (string, bool), wantTables ...string) (Meta, string, error) {
	version, ok := lookup(MetaSchemaVersion)
	if !ok {
		return Meta{}, "", fmt.Errorf("metadata key %s missing: not a blipflow table", MetaSchemaVersion)
	}
	if version != Version {
		return Meta{}, "", fmt.Errorf("metadata key %s is %q: unknown or newer schema version (this build reads %s)", MetaSchemaVersion, version, Version)
	}
	table, ok := lookup(MetaTable)
	if !ok {
		return Meta{}, "", fmt.Errorf("metadata key %s missing", MetaTable)
	}
	known := false
	for _, w := range wantTables {
		known = known || table == w
	}
	if !known {
		return Meta{}, "", fmt.Errorf("metadata key %s is %q, want one of %q", MetaTable, table, wantTables)
	}
	m := Meta{SchemaVersion: version}
	strs := []struct {
		key string
		dst *string
	}{
		{MetaModel, &m.Model},
		{MetaModelRevision, &m.ModelRevision},
		{MetaTask, &m.Task},
		{MetaGenerationSettings, &m.GenerationSettings},
		{MetaEmbeddingKind, &m.EmbeddingKind},
		{MetaJobID, &m.JobID},
		{MetaShardID, &m.ShardID},
	}
	for _, s := range strs {
		*s.dst, _ = lookup(s.key)
	}
	ints := []struct {
		key string
		dst *int
	}{
		{MetaEmbeddingVectors, &m.EmbeddingVectors},
		{MetaEmbeddingDim, &m.EmbeddingDim},
	}
	for _, i := range ints {
		v, ok := lookup(i.key)
		if !ok {
			return Meta{}, "", fmt.Errorf("metadata key %s missing", i.key)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Meta{}, "", fmt.Errorf("metadata key %s is %q: want a non-negative integer", i.key, v)
		}
		*i.dst = n
	}
	if v, ok := lookup(MetaNormalized); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Meta{}, "", fmt.Errorf("metadata key %s is %q: want true or false", MetaNormalized, v)
		}
		m.Normalized = b
	}
	if v, ok := lookup(MetaCreatedAt); ok && v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return Meta{}, "", fmt.Errorf("metadata key %s is %q: %w", MetaCreatedAt, v, err)
		}
		m.CreatedAt = t
	}
	return m, table, nil
}
