package blip2

import (
	"fmt"
	"slices"

	"blipflow/model/nn"
)

// Rows is a decode batch whose rows can leave (Select) and join (Admit)
// between steps, for continuous batching. Rows that joined later are
// shorter: their KV cache is padded at the front with steps the attention
// mask hides, so every row computes what it would in a batch of its own.
// Position ids follow each row's own count, unaffected by the padding.
type Rows struct {
	d *optDecoder
	// Prompts holds, per row, the ids generate.Generate is given for the
	// row (for the repetition penalty and length limits).
	Prompts [][]int
}

// StartRows prefills the language model for the encoded images (ids and
// mask as for Generate) with room for capacity new tokens, and returns the
// rows and their first next-token logits. Only OPT checkpoints support it.
func (m *Model) StartRows(img *ImageOutputs, ids, mask [][]int, capacity int) (*Rows, [][]float32, error) {
	if _, ok := m.LM.(*OPT); !ok {
		return nil, nil, fmt.Errorf("blip2: continuous batching supports OPT language models, not %T", m.LM)
	}
	dec, first, err := m.prefillOPT(img, ids, mask, capacity, false)
	if err != nil {
		return nil, nil, err
	}
	src := ids
	if m.Config.ImageTokenIndex == nil { // the queries were put before the prompt
		src = dec.mask
	}
	prompts := make([][]int, len(src))
	for i, p := range src {
		prompts[i] = slices.Clone(p)
	}
	return &Rows{d: dec, Prompts: prompts}, first, nil
}

// Len returns the number of rows.
func (r *Rows) Len() int { return len(r.d.mask) }

// Step feeds one token per row and returns the next-token logits.
func (r *Rows) Step(tokens []int) ([][]float32, error) { return r.d.Step(tokens) }

// Select keeps the rows listed in src (see generate.Decoder) and drops the
// cache steps no remaining row uses.
func (r *Rows) Select(src []int) error {
	if err := r.d.Select(src); err != nil {
		return err
	}
	prompts := make([][]int, len(src))
	for i, s := range src {
		prompts[i] = r.Prompts[s]
	}
	r.Prompts = prompts
	r.d.trimPadding()
	return nil
}

// Admit appends o's rows after r's (o is consumed). The shorter side's
// cache is padded at the front with masked steps.
func (r *Rows) Admit(o *Rows) error {
	a, b := r.d, o.d
	if a.o != b.o {
		return fmt.Errorf("blip2: admitting rows of another model")
	}
	n := max(a.cache.Len(), b.cache.Len())
	for i := range a.cache.K {
		a.cache.K[i] = mergeKV(a.cache.K[i], b.cache.K[i], n)
		a.cache.V[i] = mergeKV(a.cache.V[i], b.cache.V[i], n)
	}
	pad := func(mask [][]int, by int) [][]int {
		out := make([][]int, len(mask))
		for i, m := range mask {
			out[i] = append(make([]int, by, by+len(m)+cap(m)-len(m)), m...)
		}
		return out
	}
	padA, padB := n-len(a.mask[0]), n-len(b.mask[0])
	a.mask = append(pad(a.mask, padA), pad(b.mask, padB)...)
	a.count = append(slices.Clone(a.count), b.count...)
	r.Prompts = append(r.Prompts, o.Prompts...)
	o.d, o.Prompts = nil, nil
	return nil
}

// mergeKV returns a buffer of a's rows then b's, both padded at the front
// with zero steps to n steps.
func mergeKV(a, b *nn.KVBuffer, n int) *nn.KVBuffer {
	dim := a.Dim
	out := &nn.KVBuffer{Batch: a.Batch + b.Batch, Dim: dim, Len: n}
	room := max(cap(a.Data)/max(a.Batch*dim, 1)-a.Len, cap(b.Data)/max(b.Batch*dim, 1)-b.Len, 0)
	out.Data = make([]float32, n*out.Batch*dim, (n+room)*out.Batch*dim)
	for t := 0; t < n; t++ {
		step := out.Data[t*out.Batch*dim : (t+1)*out.Batch*dim]
		if s := t - (n - a.Len); s >= 0 {
			copy(step[:a.Batch*dim], a.Data[s*a.Batch*dim:(s+1)*a.Batch*dim])
		}
		if s := t - (n - b.Len); s >= 0 {
			copy(step[a.Batch*dim:], b.Data[s*b.Batch*dim:(s+1)*b.Batch*dim])
		}
	}
	return out
}

// trimPadding drops the leading cache steps every row masks (padding left
// by rows that have left), so the cache does not grow with the run.
func (d *optDecoder) trimPadding() {
	if len(d.mask) == 0 {
		return
	}
	drop := len(d.mask[0])
	for _, m := range d.mask {
		lead := 0
		for lead < len(m) && m[lead] == 0 {
			lead++
		}
		drop = min(drop, lead)
	}
	if drop == 0 {
		return
	}
	for i := range d.mask {
		d.mask[i] = d.mask[i][drop:]
	}
	for _, bufs := range [][]*nn.KVBuffer{d.cache.K, d.cache.V} {
		for _, buf := range bufs {
			step := buf.Batch * buf.Dim
			buf.Data = append(buf.Data[:0:0], buf.Data[drop*step:]...)
			buf.Len -= drop
		}
	}
}

// Release drops the rows' cache.
func (r *Rows) Release() { r.d, r.Prompts = nil, nil }
