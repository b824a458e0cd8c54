package blip2

import (
	"context"
	"testing"

	"blipflow/model/blas"
	"blipflow/model/generate"
)

// TestQueriesFirstGeneratesEveryToken checks a checkpoint without
// image_token_index (queries put before the prompt) returns all its new
// tokens: the prompts handed to generate must not grow with the decoder's
// mask.
func TestQueriesFirstGeneratesEveryToken(t *testing.T) {
	g := loadGolden(t, "opt-tiny")
	m := loadModel(t, "opt-tiny", blas.Gonum{})
	m.Config.ImageTokenIndex = nil
	img, err := m.EncodeImages(context.Background(), g.tensor(t, "c1.pixel_values"), 1)
	if err != nil {
		t.Fatal(err)
	}
	n := 5
	out, err := m.Generate(context.Background(), img, [][]int{{*m.Config.Text.BOSTokenID}}, [][]int{{1}}, generate.Config{MaxNewTokens: &n, MinNewTokens: &n})
	if err != nil {
		t.Fatal(err)
	}
	if len(out[0][0]) != n {
		t.Fatalf("generated %v: %d tokens, want %d", out[0][0], len(out[0][0]), n)
	}
}
