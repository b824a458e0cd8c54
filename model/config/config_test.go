package config

import (
	"os"
	"strings"
	"testing"

	"blipflow/internal/fixtures"
)

func TestLoadFixtures(t *testing.T) {
	opt, err := Load(fixtures.Path("opt-tiny", "model"))
	if err != nil {
		t.Fatal(err)
	}
	if !opt.DecoderOnly() || opt.Text.HiddenSize != 32 || opt.Text.WordEmbedProjDim != 32 || *opt.ImageTokenIndex != 400 || opt.NumQueryTokens != 8 {
		t.Errorf("opt-tiny config: %+v", opt)
	}
	if opt.Vision.LayerNormEps != 1e-6 || opt.QFormer.LayerNormEps != 1e-12 || opt.QFormer.PositionEmbeddingType != "absolute" {
		t.Errorf("defaults not applied: %+v %+v", opt.Vision, opt.QFormer)
	}
	t5, err := Load(fixtures.Path("t5-tiny", "model"))
	if err != nil {
		t.Fatal(err)
	}
	act, gated, _ := t5.Text.T5FeedForward()
	if t5.DecoderOnly() || t5.Text.DModel != 32 || *t5.Text.NumDecoderLayers != 2 || act != "gelu_new" || !gated {
		t.Errorf("t5-tiny config: %+v", t5.Text)
	}
	itm, err := Load(fixtures.Path("itm-tiny", "model"))
	if err != nil {
		t.Fatal(err)
	}
	if itm.ImageTokenIndex != nil || itm.ImageTextHiddenSize != 16 || !itm.QFormer.UseQFormerTextInput {
		t.Errorf("itm-tiny config: %+v", itm)
	}
}

func TestDefaultsForEmptyConfig(t *testing.T) {
	c, err := Parse([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Vision.HiddenSize != 1408 || c.Vision.NumHiddenLayers != 39 || c.QFormer.HiddenSize != 768 || c.Text.ModelType != OPT || c.NumQueryTokens != 32 {
		t.Errorf("defaults: %+v", c)
	}
	c, err = Parse([]byte(`{"text_config":{"model_type":"t5","num_layers":24}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Text.DModel != 512 || *c.Text.NumDecoderLayers != 24 || c.Text.EOSTokenID != 1 {
		t.Errorf("t5 defaults: %+v", c.Text)
	}
}

func TestInvalidConfigsNameTheField(t *testing.T) {
	cases := map[string]string{
		`{"vision_config":{"hidden_size":1000}}`:                            "vision_config.num_attention_heads",
		`{"qformer_config":{"num_attention_heads":7}}`:                      "qformer_config.num_attention_heads",
		`{"text_config":{"model_type":"llama"}}`:                            `text_config.model_type "llama"`,
		`{"text_config":{"hidden_size":100,"num_attention_heads":12}}`:      "text_config.num_attention_heads",
		`{"vision_config":{"hidden_act":"swish"}}`:                          "vision_config.hidden_act",
		`{"text_config":{"model_type":"t5","feed_forward_proj":"gated-x"}}`: "feed_forward_proj",
		`{"num_query_tokens":0}`:                                            "num_query_tokens",
		`{"vision_config":{"hidden_size":"big"}}`:                           "hidden_size",
		`not json`: "invalid JSON",
	}
	for raw, want := range cases {
		if _, err := Parse([]byte(raw)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%s) error = %v, want mention of %q", raw, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, m := range []string{"opt-tiny", "t5-tiny", "itm-tiny"} {
		raw, err := os.ReadFile(fixtures.Path(m, "model", "config.json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"text_config":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := Parse(raw)
		if err == nil && c.Validate() != nil {
			t.Fatal("Parse returned a config that does not validate")
		}
	})
}
