package blip2

import (
	"context"
	"fmt"

	"blipflow/model/generate"
)

// Generate continues each image's prompt with the language model and returns,
// per image, cfg's num_return_sequences sequences of new token ids. ids and
// mask are the processor's output for the batch (left padded, with the
// <image> tokens); img holds the encoded images in the same order. A
// cancelled ctx stops it between steps (or layers) with ctx's error.
func (m *Model) Generate(ctx context.Context, img *ImageOutputs, ids, mask [][]int, cfg generate.Config) ([][][]int, error) {
	if m.LM == nil {
		return nil, fmt.Errorf("blip2: checkpoint has no language model (a retrieval checkpoint?)")
	}
	maxNew := 20
	if cfg.MaxNewTokens != nil {
		maxNew = *cfg.MaxNewTokens
	} else if cfg.MaxLength != nil && len(ids) > 0 {
		maxNew = max(*cfg.MaxLength-len(ids[0]), 0)
	}
	// Rows after expansion (beams, or sampled sequences): the cache makes
	// room for their steps side by side (and grows if that is too few).
	slots := len(ids)
	if cfg.NumBeams != nil {
		slots *= max(*cfg.NumBeams, 1)
	}
	if cfg.NumReturnSequences != nil && (cfg.NumBeams == nil || *cfg.NumReturnSequences > *cfg.NumBeams) {
		slots = len(ids) * max(*cfg.NumReturnSequences, 1)
	}
	switch lm := m.LM.(type) {
	case *OPT:
		dec, first, err := m.prefillOPT(ctx, img, ids, mask, maxNew, slots, false)
		if err != nil {
			return nil, err
		}
		prompts := ids
		if m.Config.ImageTokenIndex == nil { // the queries were put before the prompt
			prompts = dec.mask
		}
		return generate.Generate(ctx, dec, first, prompts, cfg)
	case *T5:
		start := lm.cfg.DecoderStartTokenID
		if cfg.DecoderStartTokenID != nil {
			start = *cfg.DecoderStartTokenID
		}
		starts := make([][]int, len(ids))
		for i := range starts {
			starts[i] = []int{start}
		}
		dec, first, err := m.prefillT5(ctx, img, ids, mask, starts, maxNew, slots, false)
		if err != nil {
			return nil, err
		}
		return generate.Generate(ctx, dec, first, starts, cfg)
	}
	return nil, fmt.Errorf("blip2: unknown language model %T", m.LM)
}
