package blip2

import (
	"fmt"
	"slices"

	"blipflow/model/nn"
)

// Rows is a decode batch whose rows can leave (Select) and join (Admit)
// between steps, for continuous batching (OPT and T5). Rows that joined
// later are shorter: their KV cache is padded at the front with steps the
// attention mask hides, so every row computes what it would in a batch of
// its own. OPT's position ids follow each row's own count; T5's relative
// position bias sees the padding shift query and keys alike.
type Rows struct {
	d rowsDecoder
	// Prompts holds, per row, the ids generate.Generate is given for the
	// row (for the repetition penalty and length limits).
	Prompts [][]int
}

// rowsDecoder is a language model's decoder that rows can join.
type rowsDecoder interface {
	Step(tokens []int) ([][]float32, error)
	Select(src []int) error
	// admit appends o's rows (a decoder of the same kind and model).
	admit(o rowsDecoder) error
	// trimPadding drops leading cache steps no row uses.
	trimPadding()
	rows() int
}

// StartRows prefills the language model for the encoded images (ids and
// mask as for Generate) with room for capacity new tokens, and returns the
// rows and their first next-token logits.
func (m *Model) StartRows(img *ImageOutputs, ids, mask [][]int, capacity int) (*Rows, [][]float32, error) {
	var src [][]int
	var r *Rows
	var first [][]float32
	switch lm := m.LM.(type) {
	case *OPT:
		dec, logits, err := m.prefillOPT(img, ids, mask, capacity, false)
		if err != nil {
			return nil, nil, err
		}
		src, r, first = ids, &Rows{d: dec}, logits
		if m.Config.ImageTokenIndex == nil { // the queries were put before the prompt
			src = dec.mask
		}
	case *T5:
		src = make([][]int, len(ids))
		for i := range src {
			src[i] = []int{lm.cfg.DecoderStartTokenID}
		}
		dec, logits, err := m.prefillT5(img, ids, mask, src, capacity, false)
		if err != nil {
			return nil, nil, err
		}
		r, first = &Rows{d: dec}, logits
	default:
		return nil, nil, fmt.Errorf("blip2: no language model to decode with")
	}
	r.Prompts = make([][]int, len(src))
	for i, p := range src {
		r.Prompts[i] = slices.Clone(p)
	}
	return r, first, nil
}

// Len returns the number of rows.
func (r *Rows) Len() int { return r.d.rows() }

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
	if err := r.d.admit(o.d); err != nil {
		return err
	}
	r.Prompts = append(r.Prompts, o.Prompts...)
	o.d, o.Prompts = nil, nil
	return nil
}

func (d *optDecoder) rows() int { return len(d.mask) }

func (d *optDecoder) admit(other rowsDecoder) error {
	a := d
	b, ok := other.(*optDecoder)
	if !ok || a.o != b.o {
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
	return nil
}

func (d *t5Decoder) rows() int { return d.st.self.Batch() }

// admit merges T5 rows: the self-attention caches padded at the front (the
// padding masked through st.pad; the relative position bias depends only on
// differences of positions, which the padding shifts alike), the
// cross-attention caches padded to the longer encoder output with the
// encoder mask hiding the padding.
func (d *t5Decoder) admit(other rowsDecoder) error {
	b, ok := other.(*t5Decoder)
	if !ok || d.t != b.t {
		return fmt.Errorf("blip2: admitting rows of another model")
	}
	a := d.st
	o := b.st
	ba, bb := a.self.Batch(), o.self.Batch()
	n := max(a.self.Len(), o.self.Len())
	pads := make([]int, 0, ba+bb)
	for _, side := range []*t5State{a, o} {
		extra := n - side.self.Len()
		for r := 0; r < side.self.Batch(); r++ {
			p := extra
			if side.pad != nil {
				p += side.pad[r]
			}
			pads = append(pads, p)
		}
	}
	te := max(a.cross.Len(), o.cross.Len())
	var enc [][]int
	for _, side := range []*t5State{a, o} {
		for _, m := range side.encMask {
			enc = append(enc, append(make([]int, te-len(m), te), m...))
		}
	}
	for i := range a.self.K {
		a.self.K[i] = mergeKV(a.self.K[i], o.self.K[i], n)
		a.self.V[i] = mergeKV(a.self.V[i], o.self.V[i], n)
		a.cross.K[i] = mergeKV(a.cross.K[i], o.cross.K[i], te)
		a.cross.V[i] = mergeKV(a.cross.V[i], o.cross.V[i], te)
	}
	a.pad, a.encMask = pads, enc
	return nil
}

// trimPadding drops the self-cache steps every row pads and the encoder
// steps every row masks.
func (d *t5Decoder) trimPadding() {
	st := d.st
	if st.self.Batch() == 0 {
		return
	}
	if st.pad != nil {
		drop := slices.Min(st.pad)
		if drop > 0 {
			dropSteps(st.self, drop)
			for i := range st.pad {
				st.pad[i] -= drop
			}
		}
	}
	drop := len(st.encMask[0])
	for _, m := range st.encMask {
		lead := 0
		for lead < len(m) && m[lead] == 0 {
			lead++
		}
		drop = min(drop, lead)
	}
	if drop > 0 {
		dropSteps(st.cross, drop)
		for i := range st.encMask {
			st.encMask[i] = st.encMask[i][drop:]
		}
	}
}

// dropSteps removes the first n steps of every buffer of c.
func dropSteps(c *nn.Cache, n int) {
	for _, bufs := range [][]*nn.KVBuffer{c.K, c.V} {
		for _, buf := range bufs {
			step := buf.Batch * buf.Dim
			buf.Data = append(buf.Data[:0:0], buf.Data[n*step:]...)
			buf.Len -= n
		}
	}
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
	dropSteps(d.cache, drop)
}

// Release drops the rows' cache.
func (r *Rows) Release() { r.d, r.Prompts = nil, nil }
