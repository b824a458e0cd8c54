package blip2

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/model/blas"
	"blipflow/model/safetensors"
	"blipflow/model/search"
)

// itmGolden is itm-tiny's golden.json and golden.safetensors.
type itmGolden struct {
	Images        []string `json:"images"`
	Texts         []string `json:"texts"`
	InputIDs      [][]int  `json:"input_ids"`
	AttentionMask [][]int  `json:"attention_mask"`
	tensors       *safetensors.File
}

func loadITMGolden(t testing.TB) *itmGolden {
	t.Helper()
	raw, err := os.ReadFile(fixtures.Path("itm-tiny", "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	g := &itmGolden{}
	if err := json.Unmarshal(raw, g); err != nil {
		t.Fatal(err)
	}
	if g.tensors, err = safetensors.Open(fixtures.Path("itm-tiny", "golden.safetensors")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.tensors.Close() })
	return g
}

func (g *itmGolden) tensor(t testing.TB, name string) []float32 {
	t.Helper()
	d, _, err := g.tensors.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func loadRetrieval(t testing.TB, b blas.Backend) *Retrieval {
	t.Helper()
	m := loadModel(t, "itm-tiny", b)
	r, err := m.Retrieval()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRetrievalParity(t *testing.T) {
	g := loadITMGolden(t)
	n := len(g.Images)
	for bname, b := range backends(t) {
		t.Run(bname, func(t *testing.T) {
			r := loadRetrieval(t, b)
			px := g.tensor(t, "pixel_values")
			img, err := r.EmbedImages(context.Background(), px, n)
			if err != nil {
				t.Fatal(err)
			}
			assertClose(t, "vision_with_projection.last_hidden_state", img.Vision, g.tensor(t, "vision_with_projection.last_hidden_state"))
			assertClose(t, "vision_with_projection.image_embeds", img.Embeds, g.tensor(t, "vision_with_projection.image_embeds"))
			assertClose(t, "itc.image_embeds", img.Embeds, g.tensor(t, "itc.image_embeds"))

			text, err := r.EmbedTexts(context.Background(), g.InputIDs, g.AttentionMask)
			if err != nil {
				t.Fatal(err)
			}
			assertClose(t, "text_with_projection.last_hidden_state", text.Hidden, g.tensor(t, "text_with_projection.last_hidden_state"))
			assertClose(t, "text_with_projection.text_embeds", text.Tokens, g.tensor(t, "text_with_projection.text_embeds"))
			assertClose(t, "itc.text_embeds", text.ITC(), g.tensor(t, "itc.text_embeds"))

			perImage := similarity(img.Embeds, text.ITC(), n)
			assertClose(t, "itc.logits_per_image", perImage, g.tensor(t, "itc.logits_per_image"))
			assertClose(t, "itc.logits_per_text", transpose(perImage, n, n), g.tensor(t, "itc.logits_per_text"))

			logits, err := r.MatchLogits(context.Background(), px, g.InputIDs, g.AttentionMask)
			if err != nil {
				t.Fatal(err)
			}
			assertClose(t, "itm.logits_per_image", logits, g.tensor(t, "itm.logits_per_image"))
		})
	}
}

// similarity is logits_per_image [N,N]: the ITC score of image i (its
// query embeddings in images) with text j (texts row j).
func similarity(images, texts []float32, n int) []float32 {
	p := len(texts) / n
	q := len(images) / (n * p)
	out := make([]float32, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			out[i*n+j] = search.MaxDot(images[i*q*p:(i+1)*q*p], texts[j*p:(j+1)*p])
		}
	}
	return out
}

func transpose(x []float32, rows, cols int) []float32 {
	out := make([]float32, len(x))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			out[j*rows+i] = x[i*cols+j]
		}
	}
	return out
}

func TestRetrievalMissingHeads(t *testing.T) {
	m := loadModel(t, "opt-tiny", blas.Gonum{})
	r, err := m.Retrieval()
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range []error{r.RequireImage(), r.RequireText(), r.RequireMatch()} {
		if !errors.Is(err, ErrNoRetrievalHeads) {
			t.Errorf("opt-tiny requirement %d: got %v, want ErrNoRetrievalHeads", i, err)
		}
	}
	itm := loadRetrieval(t, blas.Gonum{})
	for i, err := range []error{itm.RequireImage(), itm.RequireText(), itm.RequireMatch()} {
		if err != nil {
			t.Errorf("itm-tiny requirement %d: %v", i, err)
		}
	}
	px := make([]float32, 3*224*224)
	ids, mask := [][]int{{2, 5, 3}}, [][]int{{1, 1, 1}}
	for _, tc := range []struct {
		name string
		run  func() error
		want []string
	}{
		{"image", func() error { _, err := r.EmbedImages(context.Background(), px, 1); return err }, []string{"vision_projection.weight", "vision_projection.bias"}},
		{"text", func() error { _, err := r.EmbedTexts(context.Background(), ids, mask); return err },
			[]string{"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight", "text_projection.weight"}},
		{"match", func() error { _, err := r.MatchLogits(context.Background(), px, ids, mask); return err }, []string{"itm_head.weight", "embeddings.word_embeddings.weight"}},
	} {
		err := tc.run()
		if !errors.Is(err, ErrNoRetrievalHeads) {
			t.Errorf("%s: got %v, want ErrNoRetrievalHeads", tc.name, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not name %s", tc.name, err, w)
			}
		}
	}
}

func TestRetrievalInputErrors(t *testing.T) {
	r := loadRetrieval(t, blas.Gonum{})
	px := make([]float32, 3*224*224)
	long := make([]int, 65)
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"pixels for another count", func() error {
			_, err := r.MatchLogits(context.Background(), px, [][]int{{2, 3}, {2, 3}}, [][]int{{1, 1}, {1, 1}})
			return err
		}, "2 image-text pairs"},
		{"token outside the vocabulary", func() error {
			_, err := r.EmbedTexts(context.Background(), [][]int{{2, 300}}, [][]int{{1, 1}})
			return err
		}, "token id 300"},
		{"text longer than the positions", func() error {
			_, err := r.EmbedTexts(context.Background(), [][]int{long}, [][]int{make([]int, 65)})
			return err
		}, "64 positions"},
		{"ragged mask", func() error { _, err := r.EmbedTexts(context.Background(), [][]int{{2, 3}}, [][]int{{1}}); return err }, "row 0"},
	} {
		if err := tc.run(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}
