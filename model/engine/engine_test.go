package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
	"blipflow/model/blas"
	"blipflow/model/generate"
)

func open(t *testing.T, model string) *Engine {
	t.Helper()
	e, err := Open(context.Background(), fixtures.Path(model, "model"), Options{BLAS: blas.Gonum{}, DType: "fp32"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// TestCaptionFromFiles goes from the image file and the prompt text to the
// generated ids, as the golden c2 cases did in transformers.
func TestCaptionFromFiles(t *testing.T) {
	const prompt = "Question: what is shown in the image? Answer:"
	want := map[string]string{
		"opt-tiny": "[129 129 129 129 129 129 129 397 298 186 30 186]",
		"t5-tiny":  "[216 216 216 216 25 25 25 25 25 25 25 25]",
	}
	for model, ids := range want {
		e := open(t, model)
		px, err := e.Images.File(fixtures.Path("images", "chelsea.png"))
		if err != nil {
			t.Fatal(err)
		}
		var gen generate.Config
		gen.Set("max_new_tokens", "12")
		caps, err := e.Caption(context.Background(), px, 1, prompt, gen)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(caps[0].IDs[0]); got != ids {
			t.Errorf("%s: ids %s, want %s", model, got, ids)
		}
		if caps[0].Texts[0] != e.Tokenizer.Decode(caps[0].IDs[0], true) {
			t.Errorf("%s: text %q is not the decoded ids", model, caps[0].Texts[0])
		}
	}
}

func TestRetrievalCheckpoint(t *testing.T) {
	e := open(t, "itm-tiny")
	if s := e.ImageEmbedding(); s.Kind != KindITCImage || !s.Normalized || s.Vectors != 8 || s.Dim != 16 {
		t.Errorf("image embedding %+v", s)
	}
	px, err := e.Images.File(fixtures.Path("images", "astronaut.png"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.Match(context.Background(), px, 1, "an astronaut")
	if err != nil || len(p) != 1 || p[0] <= 0 || p[0] >= 1 {
		t.Errorf("match = %v, %v", p, err)
	}
	if _, err := e.Caption(context.Background(), px, 1, "", generate.Config{}); err == nil {
		t.Error("a retrieval checkpoint captioned")
	}
	opt := open(t, "opt-tiny")
	if s := opt.ImageEmbedding(); s.Kind != KindQFormerQuery || s.Normalized {
		t.Errorf("opt image embedding %+v", s)
	}
	if _, err := opt.EmbedTexts(context.Background(), []string{"a cat"}); err == nil || !strings.Contains(err.Error(), "text_projection.weight") {
		t.Errorf("text embedding without heads: %v", err)
	}
}

func TestFingerprintFollowsContentNotPlace(t *testing.T) {
	a, err := Fingerprint(fixtures.Path("opt-tiny", "model"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Fingerprint(fixtures.Path("t5-tiny", "model"))
	if a == b || len(a) != 16 {
		t.Errorf("fingerprints %q %q", a, b)
	}
	if _, err := Fingerprint(t.TempDir()); err == nil {
		t.Error("fingerprint of an empty folder")
	}
}
