package worker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"blipflow/pipeline"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/queue"
	"blipflow/schemas"
)

// SettingsReporter is implemented by models that can describe their caption
// generation settings (beams, lengths...) as JSON for the table metadata.
type SettingsReporter interface {
	GenerationSettings(task pipeline.Task) string
}

// encode turns a shard's rows into a results table (Parquet) and counts the
// error rows.
func (w *Worker) encode(spec jobstate.Spec, task queue.ShardTask, ptask pipeline.Task, rows []row) ([]byte, int, error) {
	model, revision, _ := strings.Cut(w.cfg.Model.ID(), "@")
	meta := schemas.Meta{
		Model:         model,
		ModelRevision: revision,
		Task:          ptask.Name(),
		JobID:         task.Job,
		ShardID:       task.Shard,
		CreatedAt:     time.Now().UTC(),
	}
	if ptask.Caption {
		meta.GenerationSettings = generationSettings(w.cfg.Model, ptask)
	}
	if ptask.Embed {
		es := w.cfg.Model.EmbeddingSpec()
		meta.EmbeddingKind, meta.EmbeddingVectors, meta.EmbeddingDim, meta.Normalized = es.Kind, es.Vectors, es.Dim, es.Normalized
	}
	out := make([]schemas.Row, len(rows))
	errorRows := 0
	for i, r := range rows {
		if r.Err != "" {
			errorRows++
		}
		out[i] = schemas.Row{
			Key:       r.Key,
			Source:    rowSource(spec.Input, r),
			Size:      r.Size,
			SHA256:    r.SHA256,
			Width:     r.Width,
			Height:    r.Height,
			Captions:  r.Captions,
			TokenIDs:  r.TokenIDs,
			Embedding: r.Embedding,
			Error:     r.Err,
			DecodeMS:  r.DecodeMS,
			ModelMS:   r.ModelMS,
			Extra:     mergeExtra(r.Extra, r.extra()),
		}
	}
	var buf bytes.Buffer
	_, err := guard("parquet writer", func() (struct{}, error) { return struct{}{}, schemas.WriteRows(&buf, meta, out) })
	if err != nil {
		return nil, 0, fmt.Errorf("shard %s of job %s: encode parquet: %w", task.Shard, task.Job, err)
	}
	return buf.Bytes(), errorRows, nil
}

// generationSettings describes how captions were generated.
func generationSettings(m pipeline.Model, task pipeline.Task) string {
	if r, ok := m.(SettingsReporter); ok {
		return r.GenerationSettings(task)
	}
	data, _ := json.Marshal(map[string]string{"prompt": task.Prompt})
	return string(data)
}

// sourceURL names an input object in full: the input location and the key.
func sourceURL(input, key string) string {
	return strings.TrimSuffix(input, "/") + "/" + key
}
