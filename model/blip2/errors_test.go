package blip2

import (
	"context"
	"errors"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/model/blas"
	"blipflow/model/config"
	"blipflow/model/generate"
	"blipflow/model/nn"
	"blipflow/model/safetensors"
)

// hiding is a checkpoint with some tensors removed or reshaped.
type hiding struct {
	*safetensors.Dir
	hide string
}

func (h hiding) Has(name string) bool { return name != h.hide && h.Dir.Has(name) }

func (h hiding) Float32(name string) ([]float32, []int, error) {
	if name == h.hide {
		return nil, nil, safetensors.ErrNotFound
	}
	return h.Dir.Float32(name)
}

func TestMissingTensorIsNamed(t *testing.T) {
	dir := fixtures.Path("opt-tiny", "model")
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	w, err := safetensors.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, name := range []string{"qformer.encoder.layer.1.output_query.dense.weight", "vision_model.post_layernorm.bias", "language_model.model.decoder.layers.0.fc1.weight"} {
		_, err := New(cfg, hiding{w, name}, nn.NewCPU(blas.Gonum{}))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("without %s: error = %v", name, err)
		}
	}
	// A config that disagrees with the weights names the tensor and both shapes.
	cfg.QFormer.IntermediateSize = 48
	if _, err := New(cfg, w, nn.NewCPU(blas.Gonum{})); err == nil || !strings.Contains(err.Error(), "intermediate_query.dense.weight") || !strings.Contains(err.Error(), "[64 32]") {
		t.Errorf("misshaped tensor error = %v", err)
	}
}

func TestPromptLongerThanPositionsIsAnError(t *testing.T) {
	m := loadModel(t, "opt-tiny", blas.Gonum{})
	img, err := m.EncodeImages(context.Background(), make([]float32, 3*224*224), 1)
	if err != nil {
		t.Fatal(err)
	}
	row := repeat(*m.Config.ImageTokenIndex, m.Config.NumQueryTokens)
	for len(row) < 140 { // opt-tiny has 128 positions
		row = append(row, 50)
	}
	_, _, err = m.prefillOPT(context.Background(), img, [][]int{row}, [][]int{onesInt(len(row))}, 4, 0, false)
	if err == nil || !strings.Contains(err.Error(), "128 positions") {
		t.Fatalf("error = %v", err)
	}
	// Wrong number of <image> tokens is an error too, not a crash.
	if _, _, err := m.prefillOPT(context.Background(), img, [][]int{{2, 50}}, [][]int{{1, 1}}, 4, 0, false); err == nil || !strings.Contains(err.Error(), "<image>") {
		t.Fatalf("error = %v", err)
	}
}

// TestQueriesBeforePromptWithoutImageToken checks the older checkpoints'
// layout (no image_token_index): the queries go before the prompt, giving
// the same logits as the <image> tokens standing in front of it.
func TestQueriesBeforePromptWithoutImageToken(t *testing.T) {
	g := loadGolden(t, "opt-tiny")
	m := loadModel(t, "opt-tiny", blas.Gonum{})
	for _, c := range g.Cases {
		if c.Name != "c2" {
			continue
		}
		img, err := m.EncodeImages(context.Background(), imagesPixels(t, g, c.Name, 1), 1)
		if err != nil {
			t.Fatal(err)
		}
		nq := m.Config.NumQueryTokens
		m.Config.ImageTokenIndex = nil
		text := [][]int{c.InputIDs[0][nq:]}
		_, logits, err := m.prefillOPT(context.Background(), img, text, [][]int{c.AttentionMask[0][nq:]}, 0, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, "c2.logits with queries put before the prompt", flat(logits), g.tensor(t, "c2.logits"))
	}
}

func TestCancelledRunsStop(t *testing.T) {
	m := loadModel(t, "opt-tiny", blas.Gonum{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.EncodeImages(ctx, make([]float32, 3*224*224), 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("EncodeImages = %v, want context.Canceled", err)
	}
	img, err := m.EncodeImages(context.Background(), make([]float32, 3*224*224), 1)
	if err != nil {
		t.Fatal(err)
	}
	row := append(repeat(*m.Config.ImageTokenIndex, m.Config.NumQueryTokens), 2)
	var cfg generate.Config
	cfg.Set("max_new_tokens", "5")
	if _, err := m.Generate(ctx, img, [][]int{row}, [][]int{onesInt(len(row))}, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate = %v, want context.Canceled", err)
	}
}
