// Package config reads a BLIP-2 checkpoint's config.json into typed
// structures, filling absent keys with the reference implementation's
// defaults, and checks that the values are consistent.
package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Vision is the ViT image encoder's configuration (Blip2VisionConfig).
type Vision struct {
	HiddenSize        int     `json:"hidden_size"`
	IntermediateSize  int     `json:"intermediate_size"`
	NumHiddenLayers   int     `json:"num_hidden_layers"`
	NumAttentionHeads int     `json:"num_attention_heads"`
	ImageSize         int     `json:"image_size"`
	PatchSize         int     `json:"patch_size"`
	HiddenAct         string  `json:"hidden_act"`
	LayerNormEps      float64 `json:"layer_norm_eps"`
	QKVBias           bool    `json:"qkv_bias"`
}

// QFormer is the Querying Transformer's configuration (Blip2QFormerConfig).
type QFormer struct {
	VocabSize               int     `json:"vocab_size"`
	HiddenSize              int     `json:"hidden_size"`
	NumHiddenLayers         int     `json:"num_hidden_layers"`
	NumAttentionHeads       int     `json:"num_attention_heads"`
	IntermediateSize        int     `json:"intermediate_size"`
	HiddenAct               string  `json:"hidden_act"`
	MaxPositionEmbeddings   int     `json:"max_position_embeddings"`
	LayerNormEps            float64 `json:"layer_norm_eps"`
	PadTokenID              int     `json:"pad_token_id"`
	PositionEmbeddingType   string  `json:"position_embedding_type"`
	CrossAttentionFrequency int     `json:"cross_attention_frequency"`
	EncoderHiddenSize       int     `json:"encoder_hidden_size"`
	UseQFormerTextInput     bool    `json:"use_qformer_text_input"`
}

// Text is the language model's configuration. ModelType selects which of
// the OPT or T5 fields apply.
type Text struct {
	ModelType string `json:"model_type"`
	VocabSize int    `json:"vocab_size"`

	// OPT.
	HiddenSize                 int    `json:"hidden_size"`
	NumHiddenLayers            int    `json:"num_hidden_layers"`
	FFNDim                     int    `json:"ffn_dim"`
	NumAttentionHeads          int    `json:"num_attention_heads"`
	MaxPositionEmbeddings      int    `json:"max_position_embeddings"`
	DoLayerNormBefore          bool   `json:"do_layer_norm_before"`
	WordEmbedProjDim           int    `json:"word_embed_proj_dim"`
	ActivationFunction         string `json:"activation_function"`
	EnableBias                 bool   `json:"enable_bias"`
	LayerNormElementwiseAffine bool   `json:"layer_norm_elementwise_affine"`
	RemoveFinalLayerNorm       bool   `json:"_remove_final_layer_norm"`

	// T5.
	DModel                       int     `json:"d_model"`
	DKV                          int     `json:"d_kv"`
	DFF                          int     `json:"d_ff"`
	NumLayers                    int     `json:"num_layers"`
	NumDecoderLayers             *int    `json:"num_decoder_layers"`
	NumHeads                     int     `json:"num_heads"`
	RelativeAttentionNumBuckets  int     `json:"relative_attention_num_buckets"`
	RelativeAttentionMaxDistance int     `json:"relative_attention_max_distance"`
	LayerNormEpsilon             float64 `json:"layer_norm_epsilon"`
	FeedForwardProj              string  `json:"feed_forward_proj"`
	DecoderStartTokenID          int     `json:"decoder_start_token_id"`
	// ScaleDecoderOutputs (transformers 5) says whether the decoder output
	// is scaled by d_model^-0.5 before the head; absent, older checkpoints
	// scale exactly when the head is tied.
	ScaleDecoderOutputs *bool `json:"scale_decoder_outputs"`

	// Both.
	TieWordEmbeddings bool `json:"tie_word_embeddings"`
	PadTokenID        int  `json:"pad_token_id"`
	BOSTokenID        *int `json:"bos_token_id"`
	EOSTokenID        int  `json:"eos_token_id"`
}

// Model types of the language models this project runs.
const (
	OPT = "opt"
	T5  = "t5"
)

// BLIP2 is a BLIP-2 checkpoint's configuration (Blip2Config).
type BLIP2 struct {
	Architectures       []string `json:"architectures"`
	ModelType           string   `json:"model_type"`
	Vision              Vision   `json:"vision_config"`
	QFormer             QFormer  `json:"qformer_config"`
	Text                Text     `json:"text_config"`
	NumQueryTokens      int      `json:"num_query_tokens"`
	ImageTextHiddenSize int      `json:"image_text_hidden_size"`
	// ImageTokenIndex is the id of the <image> token whose positions take the
	// query outputs; nil in older checkpoints, which put them before the prompt.
	ImageTokenIndex *int `json:"image_token_index"`
}

// DefaultVision returns Blip2VisionConfig's defaults (ViT-g).
func DefaultVision() Vision {
	return Vision{HiddenSize: 1408, IntermediateSize: 6144, NumHiddenLayers: 39, NumAttentionHeads: 16,
		ImageSize: 224, PatchSize: 14, HiddenAct: "gelu", LayerNormEps: 1e-6, QKVBias: true}
}

// DefaultQFormer returns Blip2QFormerConfig's defaults.
func DefaultQFormer() QFormer {
	return QFormer{VocabSize: 30522, HiddenSize: 768, NumHiddenLayers: 12, NumAttentionHeads: 12,
		IntermediateSize: 3072, HiddenAct: "gelu", MaxPositionEmbeddings: 512, LayerNormEps: 1e-12,
		PositionEmbeddingType: "absolute", CrossAttentionFrequency: 2, EncoderHiddenSize: 1408}
}

// DefaultText returns the defaults for a language model of the given type
// (OPTConfig or T5Config). An empty type means OPT, as in Blip2Config.
func DefaultText(modelType string) Text {
	bos := 2
	t := Text{ModelType: modelType,
		// OPTConfig defaults.
		VocabSize: 50272, HiddenSize: 768, NumHiddenLayers: 12, FFNDim: 3072, NumAttentionHeads: 12,
		MaxPositionEmbeddings: 2048, DoLayerNormBefore: true, ActivationFunction: "relu", EnableBias: true,
		LayerNormElementwiseAffine: true, TieWordEmbeddings: true, PadTokenID: 1, BOSTokenID: &bos, EOSTokenID: 2,
	}
	if modelType == "" {
		t.ModelType = OPT
	}
	if modelType == T5 {
		t = Text{ModelType: T5, VocabSize: 32128, DModel: 512, DKV: 64, DFF: 2048, NumLayers: 6, NumHeads: 8,
			RelativeAttentionNumBuckets: 32, RelativeAttentionMaxDistance: 128, LayerNormEpsilon: 1e-6,
			FeedForwardProj: "relu", TieWordEmbeddings: true, PadTokenID: 0, EOSTokenID: 1, DecoderStartTokenID: 0}
	}
	return t
}

// Default returns Blip2Config's defaults.
func Default() BLIP2 {
	return BLIP2{ModelType: "blip-2", Vision: DefaultVision(), QFormer: DefaultQFormer(), Text: DefaultText(OPT),
		NumQueryTokens: 32, ImageTextHiddenSize: 256}
}

// Load reads dir/config.json.
func Load(dir string) (BLIP2, error) {
	path := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return BLIP2{}, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(raw)
	if err != nil {
		return BLIP2{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a config.json, applies defaults for absent keys and
// validates the result.
func Parse(raw []byte) (BLIP2, error) {
	var top struct {
		Text json.RawMessage `json:"text_config"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return BLIP2{}, fmt.Errorf("invalid JSON: %w", err)
	}
	var textType struct {
		ModelType string `json:"model_type"`
	}
	if len(top.Text) > 0 && string(top.Text) != "null" {
		if err := json.Unmarshal(top.Text, &textType); err != nil {
			return BLIP2{}, fmt.Errorf("text_config: %w", err)
		}
	}
	c := Default()
	c.Text = DefaultText(textType.ModelType)
	if err := json.Unmarshal(raw, &c); err != nil {
		return BLIP2{}, fmt.Errorf("invalid config: %w", err)
	}
	if c.Text.ModelType == T5 && c.Text.NumDecoderLayers == nil {
		n := c.Text.NumLayers
		c.Text.NumDecoderLayers = &n
	}
	if c.Text.ModelType == OPT && c.Text.WordEmbedProjDim == 0 {
		c.Text.WordEmbedProjDim = c.Text.HiddenSize
	}
	if err := c.Validate(); err != nil {
		return BLIP2{}, err
	}
	return c, nil
}

// DecoderOnly reports whether the language model is decoder-only (OPT).
func (c BLIP2) DecoderOnly() bool { return c.Text.ModelType == OPT }

// TextHidden returns the language model's hidden size.
func (c BLIP2) TextHidden() int {
	if c.Text.ModelType == T5 {
		return c.Text.DModel
	}
	return c.Text.HiddenSize
}

// Validate checks that the configuration describes a model this project can
// build, naming the field at fault.
func (c BLIP2) Validate() error {
	v, q, t := c.Vision, c.QFormer, c.Text
	checks := []struct {
		ok  bool
		msg string
	}{
		{c.NumQueryTokens > 0, fmt.Sprintf("num_query_tokens must be positive, got %d", c.NumQueryTokens)},
		{v.HiddenSize > 0 && v.NumAttentionHeads > 0 && v.HiddenSize%v.NumAttentionHeads == 0,
			fmt.Sprintf("vision_config.num_attention_heads (%d) must divide vision_config.hidden_size (%d)", v.NumAttentionHeads, v.HiddenSize)},
		{v.PatchSize > 0 && v.ImageSize > 0 && v.ImageSize%v.PatchSize == 0,
			fmt.Sprintf("vision_config.patch_size (%d) must divide vision_config.image_size (%d)", v.PatchSize, v.ImageSize)},
		{v.NumHiddenLayers > 0 && v.IntermediateSize > 0, "vision_config.num_hidden_layers and intermediate_size must be positive"},
		{actOK(v.HiddenAct), fmt.Sprintf("vision_config.hidden_act %q is not supported (gelu, gelu_new, relu, quick_gelu)", v.HiddenAct)},
		{q.HiddenSize > 0 && q.NumAttentionHeads > 0 && q.HiddenSize%q.NumAttentionHeads == 0,
			fmt.Sprintf("qformer_config.num_attention_heads (%d) must divide qformer_config.hidden_size (%d)", q.NumAttentionHeads, q.HiddenSize)},
		{q.CrossAttentionFrequency > 0, fmt.Sprintf("qformer_config.cross_attention_frequency must be positive, got %d", q.CrossAttentionFrequency)},
		{q.EncoderHiddenSize == v.HiddenSize,
			fmt.Sprintf("qformer_config.encoder_hidden_size (%d) must equal vision_config.hidden_size (%d)", q.EncoderHiddenSize, v.HiddenSize)},
		{q.PositionEmbeddingType == "absolute", fmt.Sprintf("qformer_config.position_embedding_type %q is not supported (absolute)", q.PositionEmbeddingType)},
		{actOK(q.HiddenAct), fmt.Sprintf("qformer_config.hidden_act %q is not supported", q.HiddenAct)},
		{t.ModelType == OPT || t.ModelType == T5, fmt.Sprintf("text_config.model_type %q is not supported (opt, t5)", t.ModelType)},
	}
	for _, ch := range checks {
		if !ch.ok {
			return fmt.Errorf("config: %s", ch.msg)
		}
	}
	switch t.ModelType {
	case OPT:
		if t.HiddenSize <= 0 || t.NumAttentionHeads <= 0 || t.HiddenSize%t.NumAttentionHeads != 0 {
			return fmt.Errorf("config: text_config.num_attention_heads (%d) must divide text_config.hidden_size (%d)", t.NumAttentionHeads, t.HiddenSize)
		}
		if !actOK(t.ActivationFunction) {
			return fmt.Errorf("config: text_config.activation_function %q is not supported", t.ActivationFunction)
		}
		if t.MaxPositionEmbeddings <= 0 || t.VocabSize <= 0 || t.NumHiddenLayers <= 0 {
			return fmt.Errorf("config: text_config.max_position_embeddings, vocab_size and num_hidden_layers must be positive")
		}
	case T5:
		if t.DModel <= 0 || t.NumHeads <= 0 || t.DKV <= 0 || t.VocabSize <= 0 || t.NumLayers <= 0 {
			return fmt.Errorf("config: text_config.d_model, num_heads, d_kv, vocab_size and num_layers must be positive")
		}
		if _, _, err := t.T5FeedForward(); err != nil {
			return err
		}
		if t.RelativeAttentionNumBuckets < 2 || t.RelativeAttentionMaxDistance <= 0 {
			return fmt.Errorf("config: text_config.relative_attention_num_buckets (%d) and relative_attention_max_distance (%d) must be positive", t.RelativeAttentionNumBuckets, t.RelativeAttentionMaxDistance)
		}
	}
	return nil
}

// T5FeedForward returns the activation and whether the T5 feed-forward is
// gated, from feed_forward_proj ("relu", "gated-gelu", ...).
func (t Text) T5FeedForward() (act string, gated bool, err error) {
	act = t.FeedForwardProj
	if len(act) > 6 && act[:6] == "gated-" {
		act, gated = act[6:], true
	}
	if act == "gelu" && gated { // transformers maps gated-gelu to gelu_new
		act = "gelu_new"
	}
	if !actOK(act) {
		return "", false, fmt.Errorf("config: text_config.feed_forward_proj %q is not supported", t.FeedForwardProj)
	}
	return act, gated, nil
}

func actOK(a string) bool {
	switch a {
	case "gelu", "gelu_new", "relu", "quick_gelu", "gelu_pytorch_tanh":
		return true
	}
	return false
}
