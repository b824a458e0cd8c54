package coordinator

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"blipflow/pipeline/jobstate"
)

// Manifest is the summary a finished job leaves in its output folder.
type Manifest struct {
	Job        string            `json:"job"`
	Input      string            `json:"input"`
	Output     string            `json:"output"`
	Task       string            `json:"task"`
	Prompt     string            `json:"prompt,omitempty"`
	Filter     string            `json:"filter,omitempty"`
	ShardSize  int               `json:"shard_size"`
	Models     []string          `json:"models"`
	CreatedAt  time.Time         `json:"created_at"`
	FinishedAt time.Time         `json:"finished_at"`
	Shards     int               `json:"shards"`
	Done       int               `json:"shards_done"`
	Failed     int               `json:"shards_failed"`
	Images     int               `json:"images"`
	Rows       int               `json:"rows"`
	ErrorRows  int               `json:"error_rows"`
	Files      []ManifestFile    `json:"files"`
	Failures   []ManifestFailure `json:"failed_shards"`
	// Duplicates counts rows skipped as copies (with dedup).
	Duplicates int `json:"duplicate_rows,omitempty"`
	// Retries are the job's retry rounds, whose rows replaced failed ones
	// in Files.
	Retries []jobstate.RetryRound `json:"retries,omitempty"`
}

// ManifestFile is one shard's output file.
type ManifestFile struct {
	Shard     string `json:"shard"`
	Path      string `json:"path"`
	Rows      int    `json:"rows"`
	ErrorRows int    `json:"error_rows"`
	// Duplicates counts the file's duplicate rows (with dedup).
	Duplicates int `json:"duplicate_rows,omitempty"`
}

// ManifestFailure is a dead-lettered shard.
type ManifestFailure struct {
	Shard      string `json:"shard"`
	Images     int    `json:"images"`
	Reason     string `json:"reason"`
	Deliveries int    `json:"deliveries"`
}

// ManifestKey is the output key of a job's manifest.
func ManifestKey(job string) string { return job + "/manifest.json" }

// Finish writes the manifest of a complete job (see Status.Complete) to
// its output and marks the job finished. It may run again: the manifest is
// rewritten from the same state.
func (c *Coordinator) Finish(ctx context.Context, st Status) (Manifest, error) {
	if !st.Complete() {
		return Manifest{}, fmt.Errorf("job %s: %d of %d shards finished; not complete", st.Spec.ID, st.Done+st.Failed, st.Shards)
	}
	spec := st.Spec
	m := Manifest{
		Job: spec.ID, Input: spec.Input, Output: spec.Output, Task: spec.Task, Prompt: spec.Prompt,
		Filter: spec.Filter, ShardSize: spec.ShardSize, Models: []string{}, CreatedAt: spec.CreatedAt,
		FinishedAt: time.Now().UTC(), Shards: st.Shards, Done: st.Done, Failed: st.Failed,
		Images: st.Images, Rows: st.Rows, ErrorRows: st.ErrorRows,
		Files: []ManifestFile{}, Failures: []ManifestFailure{},
		Duplicates: st.Duplicates, Retries: spec.Retries,
	}
	for id, s := range st.States {
		switch s.State {
		case jobstate.StateDone:
			m.Files = append(m.Files, ManifestFile{Shard: id, Path: s.File, Rows: s.Rows, ErrorRows: s.ErrorRows, Duplicates: s.Duplicates})
			if s.Model != "" && !slices.Contains(m.Models, s.Model) {
				m.Models = append(m.Models, s.Model)
			}
		case jobstate.StateFailed:
			m.Failures = append(m.Failures, ManifestFailure{Shard: id, Images: s.Images, Reason: s.Reason, Deliveries: s.Deliveries})
		}
	}
	slices.Sort(m.Models)
	slices.SortFunc(m.Files, func(a, b ManifestFile) int { return strings.Compare(a.Shard, b.Shard) })
	slices.SortFunc(m.Failures, func(a, b ManifestFailure) int { return strings.Compare(a.Shard, b.Shard) })

	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, fmt.Errorf("job %s manifest: %w", spec.ID, err)
	}
	output, err := c.cfg.OpenStore(ctx, spec.Output)
	if err != nil {
		return Manifest{}, fmt.Errorf("job %s output: %w", spec.ID, err)
	}
	if err := output.Write(ctx, ManifestKey(spec.ID), append(data, '\n')); err != nil {
		return Manifest{}, fmt.Errorf("job %s: write %s: %w", spec.ID, ManifestKey(spec.ID), err)
	}
	if _, err := c.cfg.Jobs.UpdateSpec(ctx, spec.ID, func(s *jobstate.Spec) { s.Finished = true }); err != nil {
		return Manifest{}, err
	}
	c.cfg.Log.Info("job finished", "job", spec.ID, "shards_done", m.Done, "shards_failed", m.Failed,
		"rows", m.Rows, "error_rows", m.ErrorRows, "manifest", ManifestKey(spec.ID))
	return m, nil
}
