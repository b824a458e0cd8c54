package blip2model

import (
	"context"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/model/engine"
	"blipflow/model/generate"
	"blipflow/pipeline"
)

func TestRunMatchesEngine(t *testing.T) {
	ctx := context.Background()
	gen := generate.Config{}
	if err := gen.Set("max_new_tokens", "12"); err != nil {
		t.Fatal(err)
	}
	m, err := Loader(engine.Options{DType: "fp32"}, gen)(ctx, fixtures.Path("opt-tiny", "model"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.(*Model).Close()
	pre, err := m.Preprocessor()
	if err != nil {
		t.Fatal(err)
	}
	var batch []pipeline.Image
	for _, name := range []string{"astronaut.png", "chelsea.png"} {
		px, err := pre.(interface {
			File(string) ([]float32, error)
		}).File(fixtures.Path("images", name))
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, pipeline.Image{Key: name, Pixels: px})
	}
	res, err := m.Run(ctx, pipeline.Task{Caption: true, Embed: true}, batch)
	if err != nil {
		t.Fatal(err)
	}
	// opt-tiny golden c1: astronaut.png, no prompt, greedy, 12 new tokens.
	want := []int32{15, 15, 15, 218, 129, 259, 259, 259, 259, 259, 15, 15}
	if len(res) != 2 || len(res[0].TokenIDs) != 1 || len(res[0].TokenIDs[0]) != len(want) {
		t.Fatalf("results %+v", res)
	}
	for i, id := range want {
		if res[0].TokenIDs[0][i] != id {
			t.Fatalf("astronaut caption ids %v, want %v", res[0].TokenIDs[0], want)
		}
	}
	// Batched with another image, each image gets the caption it gets alone.
	alone, err := m.Run(ctx, pipeline.Task{Caption: true}, batch[1:])
	if err != nil {
		t.Fatal(err)
	}
	if alone[0].Captions[0] != res[1].Captions[0] {
		t.Fatalf("batched caption %q differs from alone %q", res[1].Captions[0], alone[0].Captions[0])
	}
	spec := m.EmbeddingSpec()
	if len(res[0].Embedding) != spec.Vectors*spec.Dim {
		t.Fatalf("embedding has %d values, spec %+v", len(res[0].Embedding), spec)
	}
	// Captioning and embedding together share one encoder run and give the
	// embedding an embed-only run gives.
	embOnly, err := m.Run(ctx, pipeline.Task{Embed: true}, batch)
	if err != nil {
		t.Fatal(err)
	}
	for i := range batch {
		for k, v := range embOnly[i].Embedding {
			if res[i].Embedding[k] != v {
				t.Fatalf("image %d: embedding with captions differs at %d: %g vs %g", i, k, res[i].Embedding[k], v)
			}
		}
	}
}

func TestGenerationSettings(t *testing.T) {
	gen := generate.Config{}
	gen.Set("num_beams", "3")
	m, err := Loader(engine.Options{DType: "fp32"}, gen)(context.Background(), fixtures.Path("opt-tiny", "model"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.(*Model).Close()
	s := m.(*Model).GenerationSettings(pipeline.Task{Caption: true, Prompt: "a photo of"})
	for _, want := range []string{`"num_beams":3`, `"prompt":"a photo of"`, `"eos_token_id"`} {
		if !strings.Contains(s, want) {
			t.Errorf("settings %s lack %s", s, want)
		}
	}
}
