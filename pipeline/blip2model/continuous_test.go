package blip2model

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/model/engine"
	"blipflow/model/engine/continuous"
	"blipflow/model/generate"
	"blipflow/pipeline"
)

// TestContinuousRunMatchesPlainRun checks that shards run concurrently
// through the shared scheduler get the rows a plain Model gives them.
func TestContinuousRunMatchesPlainRun(t *testing.T) {
	ctx := context.Background()
	gen := generate.Config{}
	if err := gen.Set("max_new_tokens", "12"); err != nil {
		t.Fatal(err)
	}
	ref := fixtures.Path("opt-tiny", "model")
	plain, err := Loader(engine.Options{}, gen)(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.(*Model).Close()
	cm, err := ContinuousLoader(engine.Options{}, gen, continuous.Config{MaxRows: 2, EncodeBatch: 2})(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	defer cm.(*Continuous).Close()
	if cm.ID() != plain.ID() {
		t.Fatalf("IDs differ: %s vs %s", cm.ID(), plain.ID())
	}
	pre, _ := plain.Preprocessor()
	file := pre.(interface {
		File(string) ([]float32, error)
	}).File
	shards := [][]string{{"astronaut.png", "chelsea.png", "coffee.png"}, {"rocket.jpg", "wide.jpg"}, {"gray.png"}}
	task := pipeline.Task{Caption: true, Embed: true}
	var wg sync.WaitGroup
	errs := make(chan error, len(shards))
	for _, names := range shards {
		var batch []pipeline.Image
		for _, n := range names {
			px, err := file(fixtures.Path("images", n))
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, pipeline.Image{Key: n, Pixels: px})
		}
		want, err := plain.Run(ctx, task, batch)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := cm.Run(ctx, task, batch)
			if err != nil {
				errs <- err
				return
			}
			for i := range batch {
				if got[i].Err != nil || got[i].Captions[0] != want[i].Captions[0] ||
					!slices.Equal(got[i].TokenIDs[0], want[i].TokenIDs[0]) || !closeEnough(got[i].Embedding, want[i].Embedding) {
					errs <- fmt.Errorf("%s: continuous %q %v (%v), plain %q %v", batch[i].Key, got[i].Captions, got[i].TokenIDs, got[i].Err, want[i].Captions, want[i].TokenIDs)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// closeEnough compares embeddings made in encoder batches of different sizes,
// which round differently in the last bits.
func closeEnough(a, b []float32) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-5*(1+math.Abs(float64(b[i]))) {
			return false
		}
	}
	return true
}
