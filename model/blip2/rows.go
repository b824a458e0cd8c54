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
// Only OPT language models can take rows into a running batch: T5's
// relative position bias is one tensor for all rows, which holds only while
// every row has the same length, so T5 rows can start, step and leave but
// not join (Admit reports it; the engine decodes T5 in plain batches).
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

// CanAdmit reports whether rows can join a running batch of this model's
// language model (OPT: yes; T5: no, see Rows).
func (m *Model) CanAdmit() bool {
	_, ok := m.LM.(*OPT)
	return ok
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
	return nil
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
	if err := d.cache.AdoptRows(b.cache); err != nil {
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

func (d *t5Decoder) rows() int { return d.st.self.Rows() }

// admit refuses: see Rows.
func (d *t5Decoder) admit(rowsDecoder) error {
	return fmt.Errorf("blip2: T5 rows cannot join a running batch (its position bias is shared by rows of one length)")
}
