package local

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"blipflow/pipeline"
	"blipflow/pipeline/coordinator"
	"blipflow/pipeline/synth"
	"blipflow/pipeline/worker"
	"blipflow/schemas"
	"blipflow/storage"
)

// TestRunNop runs a small job end to end in one process and checks that
// every image has exactly one row, with its own caption, and that corrupt
// files become error rows.
func TestRunNop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	in, err := storage.Open(ctx, filepath.Join(dir, "in"), storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const images = 37
	if err := synth.Write(ctx, in, images, 24, 16); err != nil {
		t.Fatal(err)
	}
	if err := in.Write(ctx, "bad/corrupt.png", []byte("not a png")); err != nil {
		t.Fatal(err)
	}
	if err := in.Write(ctx, "bad/notes.txt", []byte("skipped by the filter")); err != nil {
		t.Fatal(err)
	}
	outDir := filepath.Join(dir, "out")
	model := &pipeline.NopModel{}
	task := pipeline.Task{Caption: true, Embed: true, Prompt: "a photo of"}
	run := func() coordinator.Manifest {
		m, err := Run(ctx, Config{
			StoreDir: filepath.Join(dir, "nats"),
			Request:  coordinator.Request{Input: in.URL(), Output: outDir, Task: task, ShardSize: 10},
			Model:    model, Workers: 2,
			Worker: worker.Config{BatchSize: 4, Concurrency: 2},
			Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := run()
	if m.Shards != 4 || m.Done != 4 || m.Failed != 0 || m.Rows != images+1 || m.ErrorRows != 1 {
		t.Fatalf("manifest: %d shards, %d done, %d failed, %d rows, %d error rows; want 4, 4, 0, %d, 1",
			m.Shards, m.Done, m.Failed, m.Rows, m.ErrorRows, images+1)
	}
	out, err := storage.Open(ctx, outDir, storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	prep, err := model.Preprocessor()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, f := range m.Files {
		data, err := out.Read(ctx, f.Path)
		if err != nil {
			t.Fatal(err)
		}
		meta, rows, err := schemas.ReadRows(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		if meta.JobID != m.Job || meta.ShardID != f.Shard || meta.EmbeddingDim != pipeline.NopEmbeddingDim {
			t.Errorf("%s: meta job %q shard %q dim %d", f.Path, meta.JobID, meta.ShardID, meta.EmbeddingDim)
		}
		for _, r := range rows {
			seen[r.Key]++
			if r.Key == "bad/corrupt.png" {
				if r.Error == "" {
					t.Errorf("%s: corrupt image has no error", r.Key)
				}
				continue
			}
			src, err := in.Read(ctx, r.Key)
			if err != nil {
				t.Fatal(err)
			}
			img, err := prep.DecodeBytes(r.Key, src)
			if err != nil {
				t.Fatal(err)
			}
			pixels, err := prep.Preprocess(img)
			if err != nil {
				t.Fatal(err)
			}
			want := pipeline.NopCaption(task.Prompt, pipeline.Image{Key: r.Key, Pixels: pixels})
			if r.Error != "" || len(r.Captions) != 1 || r.Captions[0] != want {
				t.Errorf("%s: error %q captions %q, want [%q]", r.Key, r.Error, r.Captions, want)
			}
			if r.Width != 24 || r.Height != 16 || len(r.Embedding) != pipeline.NopEmbeddingDim {
				t.Errorf("%s: %dx%d, embedding %d", r.Key, r.Width, r.Height, len(r.Embedding))
			}
		}
	}
	for i := range images {
		if seen[synth.Key(i)] != 1 {
			t.Errorf("%s: %d rows, want 1", synth.Key(i), seen[synth.Key(i)])
		}
	}
	if _, err := out.Stat(ctx, coordinator.ManifestKey(m.Job)); err != nil {
		t.Errorf("manifest: %v", err)
	}

	// The same run again is the same job: nothing is recomputed.
	again := run()
	if again.Job != m.Job || again.Rows != m.Rows || again.Done != m.Done {
		t.Errorf("second run: job %s, %d rows, %d done; want %s, %d, %d", again.Job, again.Rows, again.Done, m.Job, m.Rows, m.Done)
	}
}
