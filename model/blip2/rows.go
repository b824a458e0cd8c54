package blip2

import (
	"context"
	"fmt"
	"slices"
)

// Rows is a decode batch whose rows can leave (Select) and join (Admit)
// between steps, for continuous batching. It rests on the slot-table KV
// cache: rows of different lengths live side by side in one cache (each
// row's mask and position ids follow its own steps), rows that leave only
// drop their slot tables, and joining rows, prefilled on their own, are
// copied into slots the running rows do not use (nn.KVCache.AdoptRows).
// Rows that joined compute exactly what they would in a batch of their own.
//
// T5's relative position bias is one tensor for all rows, which needs
// every row to have the same length: a joining T5 row (just its start
// token) is padded at the front of its self-attention cache with masked
// steps to the running rows' length, which shifts its queries and keys
// alike (the bias depends on their difference), and the padding every row
// has is dropped when rows leave.
type Rows struct {
	d rowsDecoder
	// Prompts holds, per row, the ids generate.Generate is given for the
	// row (for the repetition penalty and length limits).
	Prompts [][]int
}

// rowsDecoder is a language model's decoder as Rows drives it.
type rowsDecoder interface {
	Step(ctx context.Context, tokens []int) ([][]float32, error)
	Select(src []int) error
	// admit appends o's rows (a decoder of the same kind and model).
	admit(o rowsDecoder) error
	rows() int
	// trimPadding drops leading cache steps no row uses.
	trimPadding() error
}

// StartRows prefills the language model for the encoded images (ids and
// mask as for Generate) with room for capacity new tokens, and returns the
// rows and their first next-token logits.
func (m *Model) StartRows(ctx context.Context, img *ImageOutputs, ids, mask [][]int, capacity int) (*Rows, [][]float32, error) {
	var src [][]int
	var r *Rows
	var first [][]float32
	switch lm := m.LM.(type) {
	case *OPT:
		dec, logits, err := m.prefillOPT(ctx, img, ids, mask, capacity, len(ids), false)
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
		dec, logits, err := m.prefillT5(ctx, img, ids, mask, src, capacity, len(ids), false)
		if err != nil {
			return nil, nil, err
		}
		r, first = &Rows{d: dec}, logits
	default:
		return nil, nil, fmt.Errorf("blip2: no language model to decode with")
	}
	r.Prompts = make([][]int, len(src))
	for i, p := range src {
		r.Prompts[i] = slices.Clone(p) // a copy: the decoder's mask rows grow
	}
	return r, first, nil
}

// Len returns the number of rows.
func (r *Rows) Len() int { return r.d.rows() }

// Step feeds one token per row and returns the next-token logits. On an
// error the rows are as they were before the call.
func (r *Rows) Step(ctx context.Context, tokens []int) ([][]float32, error) {
	return r.d.Step(ctx, tokens)
}

// Select keeps the rows listed in src (see generate.Decoder).
func (r *Rows) Select(src []int) error {
	if err := r.d.Select(src); err != nil {
		return err
	}
	prompts := make([][]int, len(src))
	for i, s := range src {
		prompts[i] = r.Prompts[s]
	}
	r.Prompts = prompts
	return r.d.trimPadding()
}

// Admit appends o's rows after r's (o is consumed).
func (r *Rows) Admit(o *Rows) error {
	if err := r.d.admit(o.d); err != nil {
		return err
	}
	r.Prompts = append(r.Prompts, o.Prompts...)
	o.d, o.Prompts = nil, nil
	return nil
}

// Release drops the rows' cache.
func (r *Rows) Release() { r.d, r.Prompts = nil, nil }

func (d *optDecoder) rows() int { return len(d.mask) }

// admit copies b's rows into d's cache and takes their masks and position
// counts; the step graphs are rebuilt for the new batch (and capacity).
func (d *optDecoder) admit(other rowsDecoder) error {
	b, ok := other.(*optDecoder)
	if !ok || d.o != b.o {
		return fmt.Errorf("blip2: admitting rows of another model")
	}
	if err := d.cache.AdoptRows(b.cache, 0); err != nil {
		return fmt.Errorf("blip2: admitting %d rows: %w", len(b.mask), err)
	}
	for _, m := range b.mask {
		d.mask = append(d.mask, append(make([]int, 0, d.cache.Capacity), m...))
	}
	d.count = append(d.count, b.count...)
	for k, s := range d.steps {
		s.run.Close()
		delete(d.steps, k)
	}
	return nil
}

// trimPadding has nothing to do: OPT rows are not padded.
func (d *optDecoder) trimPadding() error { return nil }

func (d *t5Decoder) rows() int { return d.st.self.Rows() }

// admit copies b's rows into d's caches: the self-attention steps shifted
// behind masked padding to the running rows' length (see Rows), the
// cross-attention steps as they are (each row's encoder mask covers its
// own length).
func (d *t5Decoder) admit(other rowsDecoder) error {
	b, ok := other.(*t5Decoder)
	if !ok || d.t != b.t {
		return fmt.Errorf("blip2: admitting rows of another model")
	}
	a, o := d.st, b.st
	shift := a.self.MaxLen() - o.self.MaxLen()
	if shift < 0 {
		return fmt.Errorf("blip2: admitting T5 rows of %d steps into rows of %d", o.self.MaxLen(), a.self.MaxLen())
	}
	ra, rb := a.self.Rows(), o.self.Rows()
	if err := a.self.AdoptRows(o.self, shift); err != nil {
		return fmt.Errorf("blip2: admitting %d rows: %w", rb, err)
	}
	if err := a.cross.AdoptRows(o.cross, 0); err != nil {
		if serr := a.self.Select(seq(ra)); serr != nil { // take the self rows back out
			return fmt.Errorf("blip2: admitting %d rows: %w (and restoring: %v)", rb, err, serr)
		}
		return fmt.Errorf("blip2: admitting %d rows: %w", rb, err)
	}
	pads := make([]int, 0, ra+rb)
	for r := 0; r < ra; r++ {
		p := 0
		if a.pad != nil {
			p = a.pad[r]
		}
		pads = append(pads, p)
	}
	for r := 0; r < rb; r++ {
		p := shift
		if o.pad != nil {
			p += o.pad[r]
		}
		pads = append(pads, p)
	}
	a.pad = pads
	a.encMask = append(a.encMask, o.encMask...)
	for k, s := range d.steps {
		s.run.Close()
		delete(d.steps, k)
	}
	return nil
}

// trimPadding drops the leading self-cache steps that every row pads.
func (d *t5Decoder) trimPadding() error {
	st := d.st
	if len(st.pad) == 0 {
		return nil
	}
	drop := slices.Min(st.pad)
	if drop == 0 {
		return nil
	}
	if err := st.self.DropLeading(drop); err != nil {
		return fmt.Errorf("blip2: dropping padding: %w", err)
	}
	for i := range st.pad {
		st.pad[i] -= drop
	}
	return nil
}

// seq returns 0..n-1.
func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
