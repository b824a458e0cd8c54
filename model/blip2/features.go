package blip2

import (
	"context"
	"errors"
	"fmt"

	"blipflow/model/nn"
)

// Features are the Blip2Model feature outputs of a batch of images: the
// vision encoder's last_hidden_state (get_image_features) and the Q-Former's
// last_hidden_state (get_qformer_features).
type Features struct {
	N int
	// Image is [N,T,Dv]; Queries is [N,Q,Dq].
	Image, Queries []float32
}

// ImageFeatures runs the vision encoder and the Q-Former on pixels
// [N,3,H,W] and returns both feature tensors.
func (m *Model) ImageFeatures(ctx context.Context, pixels []float32, n int) (*Features, error) {
	out, err := m.EncodeImages(ctx, pixels, n)
	if err != nil {
		return nil, err
	}
	return &Features{N: n, Image: out.Vision, Queries: out.Queries}, nil
}

// TextFeatures runs the language model on token ids [B,T] with their
// attention mask (1 keep, 0 pad) and no image, as Blip2Model's
// get_text_features does, returning the last hidden states [B,T,D]
// flattened: OPT's decoder output (after its final norm and projection),
// or T5's encoder output.
func (m *Model) TextFeatures(ctx context.Context, ids, mask [][]int) ([]float32, error) {
	if err := checkTokenBatch(ids, mask); err != nil {
		return nil, err
	}
	switch lm := m.LM.(type) {
	case *OPT:
		return lm.hiddenStates(ctx, m.Ops, ids, mask)
	case *T5:
		return lm.encoderStates(ctx, m.Ops, ids, mask)
	case nil:
		return nil, errors.New("blip2: checkpoint has no language model (language_projection.weight and language_model.* are missing)")
	default:
		return nil, fmt.Errorf("blip2: text features of a %T language model are not supported", lm)
	}
}

// hiddenStates runs OPT over ids with a causal, padding-aware mask and
// positions counted over the unmasked tokens (as the reference derives them
// from the attention mask), with a fresh cache.
func (o *OPT) hiddenStates(ctx context.Context, ops nn.Ops, ids, mask [][]int) ([]float32, error) {
	b, t := len(ids), len(ids[0])
	if t > o.cfg.MaxPositionEmbeddings {
		return nil, fmt.Errorf("blip2: text of %d tokens exceeds OPT's %d positions", t, o.cfg.MaxPositionEmbeddings)
	}
	positions := make([]int, 0, b*t)
	attn := make([]float32, b*t*t)
	for r := 0; r < b; r++ {
		seen := 0
		for j := 0; j < t; j++ {
			if mask[r][j] != 0 {
				seen++
				positions = append(positions, seen-1+optPositionOffset)
			} else {
				positions = append(positions, optPositionOffset-1)
			}
		}
		for i := 0; i < t; i++ {
			for j := 0; j < t; j++ {
				if j > i || mask[r][j] == 0 {
					attn[(r*t+i)*t+j] = maskMin
				}
			}
		}
	}
	g := nn.NewGraph(ops)
	x := g.Ops.Embed(g.InputInts(flatten(ids), b, t), o.embed)
	cache := ops.NewKVCache(len(o.layers), b, b, o.dim, t)
	kvPos, err := cache.Reserve(t)
	if err != nil {
		return nil, err
	}
	h := o.forward(g, x, g.InputInts(positions, b, t), g.InputInts(kvPos, b), g.Input(attn, b, t, t), cache)
	if err := g.Run(ctx); err != nil {
		return nil, err
	}
	out, _ := nn.Value(h)
	return out, nil
}

// encoderStates runs T5's encoder over ids with their padding mask.
func (t *T5) encoderStates(ctx context.Context, ops nn.Ops, ids, mask [][]int) ([]float32, error) {
	b, n := len(ids), len(ids[0])
	g := nn.NewGraph(ops)
	x := g.Ops.Embed(g.InputInts(flatten(ids), b, n), t.shared)
	h := t.encode(g, x, mask)
	if err := g.Run(ctx); err != nil {
		return nil, err
	}
	out, _ := nn.Value(h)
	return out, nil
}

// checkTokenBatch checks that ids and mask are non-empty, rectangular and
// of the same shape.
func checkTokenBatch(ids, mask [][]int) error {
	if len(ids) == 0 || len(ids[0]) == 0 {
		return errors.New("blip2: no tokens")
	}
	if len(mask) != len(ids) {
		return fmt.Errorf("blip2: %d attention mask rows for %d token rows", len(mask), len(ids))
	}
	t := len(ids[0])
	for r := range ids {
		if len(ids[r]) != t || len(mask[r]) != t {
			return fmt.Errorf("blip2: row %d has %d tokens and %d mask entries, want %d (pad the batch)", r, len(ids[r]), len(mask[r]), t)
		}
	}
	return nil
}
