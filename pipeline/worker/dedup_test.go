package worker

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"blipflow/pipeline"
	"blipflow/pipeline/jobstate"
	"blipflow/pipeline/queue"
	"blipflow/pipeline/synth"
	"blipflow/schemas"
	"blipflow/storage"
)

// TestDedupAcrossWorkers gives two workers two shards that hold copies of
// the same images (and copies within a shard): each content is processed
// once, every other copy is a duplicate row naming the processed key.
func TestDedupAcrossWorkers(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, queue.Config{}, 6)
	var shardA, shardB []string
	for i := range 6 {
		data, err := f.in.Read(ctx, synth.Key(i))
		if err != nil {
			t.Fatal(err)
		}
		for c := range 3 {
			key := fmt.Sprintf("copies/%d-%d.png", i, c)
			if err := f.in.Write(ctx, key, data); err != nil {
				t.Fatal(err)
			}
			if c == 0 {
				shardA = append(shardA, key)
			} else {
				shardB = append(shardB, key)
			}
		}
		shardA = append(shardA, synth.Key(i))
	}
	_, err := f.conn.Jobs.CreateSpec(ctx, jobstate.Spec{ID: "dedup", Input: f.in.URL(), Output: f.output, Task: pipeline.TaskCaption,
		ShardSize: 100, Published: true, Shards: 2, Dedup: &jobstate.Dedup{Scope: "dedup"}})
	if err != nil {
		t.Fatal(err)
	}
	for id, keys := range map[string][]string{"a": shardA, "b": shardB} {
		if _, err := f.conn.Queue.Publish(ctx, queue.ShardTask{Job: "dedup", Shard: id, Keys: keys, Images: len(keys)}); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range 2 {
		w := f.worker(t, &pipeline.NopModel{}, Config{BatchSize: 4, Concurrency: 1})
		go func() { _ = w.Run(runCtx) }()
	}
	states := f.waitStates(t, "dedup", func(s map[string]jobstate.ShardState) bool {
		return s["a"].State == jobstate.StateDone && s["b"].State == jobstate.StateDone
	})
	out, err := storage.Open(ctx, f.output, storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	processed := map[string]string{} // sha256 -> processed key
	var dups []schemas.Row
	recorded := 0
	for _, shard := range []string{"a", "b"} {
		data, err := out.Read(ctx, ShardFile("dedup", shard))
		if err != nil {
			t.Fatal(err)
		}
		_, rows, err := schemas.ReadRows(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			switch {
			case r.Error != "":
				t.Errorf("%s: error %q", r.Key, r.Error)
			case r.Extra[ExtraDuplicateOf] != "":
				if len(r.Captions) != 0 || r.Width != 0 {
					t.Errorf("duplicate %s was processed: %+v", r.Key, r)
				}
				dups = append(dups, r)
			default:
				if other, seen := processed[r.SHA256]; seen {
					t.Errorf("content of %s processed twice (also as %s)", r.Key, other)
				}
				processed[r.SHA256] = r.Key
				if len(r.Captions) != 1 {
					t.Errorf("%s: captions %q", r.Key, r.Captions)
				}
			}
		}
		recorded += states[shard].Duplicates
	}
	if len(processed) != 6 || len(dups) != 18 || recorded != 18 {
		t.Fatalf("%d contents processed, %d duplicate rows (%d in shard states); want 6 and 18", len(processed), len(dups), recorded)
	}
	for _, r := range dups {
		if processed[r.SHA256] != r.Extra[ExtraDuplicateOf] {
			t.Errorf("%s: duplicate_of %q, but %q was processed", r.Key, r.Extra[ExtraDuplicateOf], processed[r.SHA256])
		}
	}
}
