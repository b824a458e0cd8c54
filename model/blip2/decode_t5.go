package blip2

import (
	"context"
	"fmt"

	"blipflow/model/nn"

	G "gorgonia.org/gorgonia"
)

// t5Decoder is a T5 model mid-generation. It implements generate.Decoder.
type t5Decoder struct {
	m  *Model
	t  *T5
	st *t5State
	// steps holds the compiled decode-step graph of the current batch
	// size (see optDecoder.steps).
	steps map[int]*t5Step
}

// t5Step is a compiled decode step for a batch size.
type t5Step struct {
	run    *nn.Runner
	pass   *t5Pass
	logits *G.Node
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
		self:    m.Ops.NewKVCache(len(t.decoder.layers), b, slots, inner, n+capacity),
		cross:   m.Ops.NewKVCache(len(t.decoder.layers), b, slots, inner, te),
		encMask: mask,
	}
	enc := t.encode(g, x, mask)
	p := t.newPass(b, n, n, te, true)
	if err := p.fill(t, st, flatten(decoderIDs)); err != nil {
		return nil, nil, err
	}
	h := t.decode(g, p, st, enc)
	if !all {
		h = token(g, h, n-1)
	}
	logits := g.Ops.Linear(h, t.lmHead)
	if err := g.Run(ctx); err != nil {
		return nil, nil, err
	}
	return &t5Decoder{m: m, t: t, st: st, steps: map[int]*t5Step{}}, rowsOf(logits, t.cfg.VocabSize), nil
}

// Step feeds one token per row and returns the next-token logits.
func (d *t5Decoder) Step(ctx context.Context, tokens []int) ([][]float32, error) {
	b := d.st.self.Rows()
	if len(tokens) != b {
		return nil, fmt.Errorf("blip2: %d tokens for %d rows", len(tokens), b)
	}
	s, ok := d.steps[b]
	if !ok {
		s = &t5Step{pass: d.t.newPass(b, 1, d.st.self.Capacity, d.st.cross.Capacity, false)}
		g := nn.NewGraph(d.m.Ops)
		s.logits = g.Ops.Linear(d.t.decode(g, s.pass, d.st, nil), d.t.lmHead)
		s.run = g.Compile()
		for k, old := range d.steps {
			old.run.Close()
			delete(d.steps, k)
		}
		d.steps[b] = s
	}
	if err := s.pass.fill(d.t, d.st, tokens); err != nil {
		return nil, err
	}
	if err := s.run.Run(ctx); err != nil {
		d.st.self.Truncate(1)
		return nil, err
	}
	return rowsOf(s.logits, d.t.cfg.VocabSize), nil
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
