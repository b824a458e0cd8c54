package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"blipflow/index"
	"blipflow/pipeline/coordinator"
)

// indexFile is where `run --index` writes a job's index, under its output.
func indexFile(job string) string { return job + "/index.bfi" }

// checkIndexable says why a job cannot build its index (--index), before
// it runs: the task must embed, and the output must be a local folder,
// since the index is memory-mapped.
func checkIndexable(f *runFlags, embed bool) error {
	switch {
	case !embed:
		return errors.New("--index needs --task embed or both")
	case strings.Contains(f.output, "://") && !strings.HasPrefix(f.output, "file://"):
		return fmt.Errorf("--index needs a local --output folder (the index is memory-mapped), not %s", f.output)
	case !f.local && !f.wait:
		return errors.New("--index needs --wait: the index is built when the job's last shard lands")
	}
	return nil
}

// buildJobIndex indexes the embeddings of a finished job's tables next to
// them.
func buildJobIndex(out io.Writer, m coordinator.Manifest) error {
	root := strings.TrimPrefix(m.Output, "file://")
	var tables []string
	for _, f := range m.Files {
		tables = append(tables, filepath.Join(root, filepath.FromSlash(f.Path)))
	}
	path := filepath.Join(root, filepath.FromSlash(indexFile(m.Job)))
	if len(tables) == 0 {
		return fmt.Errorf("job %s: no tables to index", m.Job)
	}
	st, err := index.BuildFromTables(tables, path, index.Params{Seed: 1})
	if err != nil {
		return fmt.Errorf("job %s: %w", m.Job, err)
	}
	fmt.Fprintf(out, "job %s: indexed %d images into %s in %s\n", m.Job, st.Images, path, st.Duration.Round(1e6))
	return nil
}
