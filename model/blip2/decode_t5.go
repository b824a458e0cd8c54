package blip2

import (
	"context"
	"fmt"

	"blipflow/model/nn"
)

// t5Decoder is a T5 model mid-generation. It implements generate.Decoder.
type t5Decoder struct {
	m  *Model
	t  *T5
	st *t5State
}

// prefillT5 encodes the prompt (queries in place of the <image> tokens) and
// runs the decoder over decoderIDs [B,T] (usually the start token alone). It
// returns the decoder and the logits of the last position [B][V], or of
// every position when all is set.
func (m *Model) prefillT5(ctx context.Context, img *ImageOutputs, ids, mask [][]int, decoderIDs [][]int, capacity, slots int, all bool) (*t5Decoder, [][]float32, error) {
	t := m.LM.(*T5)
	g := nn.NewGraph(m.Ops)
	x, _, mask, err := m.promptEmbeddings(g, img, ids, mask)
	if err != nil {
		return nil, nil, err
	}
	b, n := len(decoderIDs), len(decoderIDs[0])
	te := len(mask[0])
	inner := t.heads * t.dkv
	st := &t5State{
		self:    nn.NewKVCache(len(t.decoder.layers), b, slots, inner, n+capacity),
		cross:   nn.NewKVCache(len(t.decoder.layers), b, slots, inner, te),
		encMask: mask,
	}
	enc := t.encode(g, x, mask)
	h, err := t.decode(g, flatten(decoderIDs), b, st, enc)
	if err != nil {
		return nil, nil, err
	}
	if !all {
		h = token(g, h, n-1)
	}
	logits := g.Ops.Linear(h, t.lmHead)
	if err := g.Run(ctx); err != nil {
		return nil, nil, err
	}
	return &t5Decoder{m: m, t: t, st: st}, rowsOf(logits, t.cfg.VocabSize), nil
}

// Step feeds one token per row and returns the next-token logits.
func (d *t5Decoder) Step(ctx context.Context, tokens []int) ([][]float32, error) {
	b := d.st.self.Rows()
	if len(tokens) != b {
		return nil, fmt.Errorf("blip2: %d tokens for %d rows", len(tokens), b)
	}
	g := nn.NewGraph(d.m.Ops)
	h, err := d.t.decode(g, tokens, b, d.st, nil)
	if err != nil {
		return nil, err
	}
	logits := g.Ops.Linear(h, d.t.lmHead)
	if err := g.Run(ctx); err != nil {
		return nil, err
	}
	return rowsOf(logits, d.t.cfg.VocabSize), nil
}

// Select rearranges the rows (beam reordering, dropping finished rows).
func (d *t5Decoder) Select(src []int) error {
	if err := d.st.self.Select(src); err != nil {
		return err
	}
	if err := d.st.cross.Select(src); err != nil {
		return err
	}
	mask := make([][]int, len(src))
	for i, s := range src {
		mask[i] = d.st.encMask[s]
	}
	d.st.encMask = mask
	return nil
}
