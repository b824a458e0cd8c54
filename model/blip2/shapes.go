package blip2

import (
	"fmt"
	"sort"

	"blipflow/model/config"
)

// Shapes returns the configurations of the released BLIP-2 checkpoints by
// name, so a model of the real size can be built (with random weights) and
// measured without downloading it.
func Shapes() map[string]config.BLIP2 {
	image := 50265
	opt := func(hidden, layers, heads, ffn int) config.BLIP2 {
		c := config.Default()
		c.Text = config.DefaultText(config.OPT)
		c.Text.VocabSize, c.Text.HiddenSize, c.Text.NumHiddenLayers = 50304, hidden, layers
		c.Text.NumAttentionHeads, c.Text.FFNDim, c.Text.WordEmbedProjDim = heads, ffn, hidden
		c.ImageTokenIndex = &image
		return c
	}
	t5 := func(d, layers, heads, ff int) config.BLIP2 {
		c := config.Default()
		c.Text = config.DefaultText(config.T5)
		c.Text.DModel, c.Text.NumLayers, c.Text.NumHeads, c.Text.DFF = d, layers, heads, ff
		c.Text.DKV, c.Text.FeedForwardProj, c.Text.TieWordEmbeddings = 64, "gated-gelu", false
		c.Text.NumDecoderLayers = &layers
		c.ImageTokenIndex = &image
		return c
	}
	return map[string]config.BLIP2{
		"blip2-opt-2.7b":   opt(2560, 32, 32, 10240),
		"blip2-opt-6.7b":   opt(4096, 32, 32, 16384),
		"blip2-flan-t5-xl": t5(2048, 24, 32, 5120),
	}
}

// Shape returns one of Shapes by name.
func Shape(name string) (config.BLIP2, error) {
	s := Shapes()
	if c, ok := s[name]; ok {
		return c, nil
	}
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	return config.BLIP2{}, fmt.Errorf("blip2: unknown model shape %q (known: %v)", name, names)
}
