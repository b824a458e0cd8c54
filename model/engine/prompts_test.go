package engine

import (
	"context"
	"fmt"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/model/generate"
)

// TestCaptionEachMatchesSingleRuns batches images with prompts of different
// lengths (so the batch is left-padded) and checks that every row gets the
// tokens it gets alone, for the decoder-only OPT and the encoder-decoder
// T5 (whose relative positions padding must not shift).
func TestCaptionEachMatchesSingleRuns(t *testing.T) {
	images := []string{"chelsea.png", "astronaut.png", "coffee.png", "rocket.jpg"}
	prompts := []string{
		"Question: what is shown in the image? Answer:",
		"a photo of",
		"",
		"Question: how many cups of coffee are on the table in this picture? Answer:",
	}
	for _, model := range []string{"opt-tiny", "t5-tiny"} {
		t.Run(model, func(t *testing.T) {
			e := open(t, model)
			gen := generate.Config{MaxNewTokens: generate.Int(10)}
			var pixels []float32
			var want []string
			for i, name := range images {
				px, err := e.Images.File(fixtures.Path("images", name))
				if err != nil {
					t.Fatal(err)
				}
				pixels = append(pixels, px...)
				alone, err := e.Caption(context.Background(), px, 1, prompts[i], gen)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, fmt.Sprint(alone[0].IDs))
			}
			caps, _, err := e.CaptionEach(context.Background(), pixels, prompts, gen, false)
			if err != nil {
				t.Fatal(err)
			}
			distinct := map[string]bool{}
			for i, c := range caps {
				distinct[want[i]] = true
				if got := fmt.Sprint(c.IDs); got != want[i] {
					t.Errorf("row %d (%q): batched ids %s, alone %s", i, prompts[i], got, want[i])
				}
			}
			if len(distinct) < 2 {
				t.Errorf("every row gives the same ids %v: the test cannot tell rows apart", want)
			}
		})
	}
}
