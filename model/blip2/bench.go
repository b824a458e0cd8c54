package blip2

import (
	"context"
	"fmt"
	"runtime/pprof"
	"time"

	"blipflow/model/nn"
)

// StageTiming is one measured stage of a forward pass.
type StageTiming struct {
	Stage   string
	Batch   int
	Seconds float64
	// FLOP is the number of floating-point operations the stage does
	// (multiply-adds count two), so FLOP/Seconds is the achieved rate.
	FLOP float64
	// WeightBytes is the size of the weights the stage reads.
	WeightBytes float64
	// Ops is the wall time per run of each kind of op, longest first,
	// when BenchOptions.OpTimes is set.
	Ops []nn.OpTime
}

// GFLOPS returns the achieved rate.
func (s StageTiming) GFLOPS() float64 { return s.FLOP / s.Seconds / 1e9 }

// BenchOptions says what Measure times.
type BenchOptions struct {
	PromptLen   int   // text tokens after the queries in the prefill (default 10)
	DecodeBatch []int // batch sizes of the decode step (default 1, 8, 32)
	DecodePast  int   // cached steps before the measured decode step (default queries + prompt)
	Repeats     int   // best of this many runs (default 2)
	// OpTimes, when set, is the collector the model's CPU ops record into
	// (nn.CPU.Times): each stage's op times are averaged over its runs.
	OpTimes *nn.OpTimes
}

// Measure times the vision encoder per image, the Q-Former, the prefill
// of one prompt and one decode step at each batch size, on random pixels.
func Measure(ctx context.Context, m *Model, o BenchOptions) ([]StageTiming, error) {
	if o.PromptLen == 0 {
		o.PromptLen = 10
	}
	if o.DecodeBatch == nil {
		o.DecodeBatch = []int{1, 8, 32}
	}
	if o.Repeats == 0 {
		o.Repeats = 2
	}
	c := m.Config
	nq := c.NumQueryTokens
	if o.DecodePast == 0 {
		o.DecodePast = nq + o.PromptLen
	}
	// best times f, labelled stage in CPU profiles (pprof -tagfocus
	// stage=…), and returns its best time and, with o.OpTimes, its op
	// times per run.
	best := func(stage string, f func() error) (secs float64, ops []nn.OpTime, err error) {
		b := 0.0
		if o.OpTimes != nil {
			o.OpTimes.Take()
			defer func() {
				ops = o.OpTimes.Take()
				for i := range ops {
					ops[i].Time /= time.Duration(o.Repeats)
				}
			}()
		}
		for i := 0; i < o.Repeats; i++ {
			start := time.Now()
			pprof.Do(ctx, pprof.Labels("stage", stage), func(context.Context) { err = f() })
			if err != nil {
				return 0, nil, err
			}
			if s := time.Since(start).Seconds(); i == 0 || s < b {
				b = s
			}
		}
		return b, ops, nil // ops: set by the deferred Take
	}
	var out []StageTiming
	size := c.Vision.ImageSize
	pixels := nn.NewRandomSource(1, 1).Shaped([]int{1, 3, size, size})
	var vis []float32
	secs, ops, err := best("vision", func() error {
		var err error
		vis, err = m.Vision.Encode(ctx, m.Ops, pixels, 1)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("vision encoder: %w", err)
	}
	out = append(out, StageTiming{Stage: "vision encoder", Batch: 1, Seconds: secs, FLOP: visionFLOP(c.Vision.HiddenSize, c.Vision.IntermediateSize, c.Vision.NumHiddenLayers, NumPositions(c.Vision), c.Vision.PatchSize), Ops: ops})
	t := NumPositions(c.Vision)
	img := &ImageOutputs{N: 1}
	secs, ops, err = best("qformer", func() error {
		g := nn.NewGraph(m.Ops)
		q := m.QFormer.Forward(g, g.Input(vis, 1, t, c.Vision.HiddenSize))
		var p = q
		if m.Projection != nil {
			p = g.Ops.Linear(q, m.Projection)
		}
		if err := g.Run(ctx); err != nil {
			return err
		}
		img.Projected, _ = nn.Value(p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("q-former: %w", err)
	}
	out = append(out, StageTiming{Stage: "q-former", Batch: 1, Seconds: secs, FLOP: qformerFLOP(c.QFormer.HiddenSize, c.QFormer.IntermediateSize, c.QFormer.NumHiddenLayers, c.QFormer.CrossAttentionFrequency, nq, t, c.Vision.HiddenSize), Ops: ops})
	if m.LM == nil {
		return out, nil
	}
	o5, isOPT := m.LM.(*OPT)
	if !isOPT {
		return out, nil // decode-step timing is implemented for OPT
	}
	ids := make([]int, 0, nq+o.PromptLen)
	for i := 0; i < nq; i++ {
		ids = append(ids, *c.ImageTokenIndex)
	}
	for i := 0; i < o.PromptLen; i++ {
		ids = append(ids, 100+i)
	}
	n := len(ids)
	secs, ops, err = best("prefill", func() error {
		_, _, err := m.prefillOPT(ctx, img, [][]int{ids}, [][]int{onesInt(n)}, 1, 1, false)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("prefill: %w", err)
	}
	lmBytes := float64(o5.weightBytes())
	out = append(out, StageTiming{Stage: fmt.Sprintf("prefill (%d tokens)", n), Batch: 1, Seconds: secs, FLOP: o5.flop(n, n) + 2*float64(o5.dim*o5.cfg.VocabSize), WeightBytes: lmBytes, Ops: ops})
	for _, b := range o.DecodeBatch {
		d, err := o5.emptyDecoder(m, b, o.DecodePast)
		if err != nil {
			return nil, err
		}
		tokens := make([]int, b)
		secs, ops, err = best(fmt.Sprintf("decode%d", b), func() error {
			if _, err := d.Step(ctx, tokens); err != nil {
				return err
			}
			return d.rewind(1)
		})
		if err != nil {
			return nil, fmt.Errorf("decode step: %w", err)
		}
		out = append(out, StageTiming{Stage: fmt.Sprintf("decode step (past %d)", o.DecodePast), Batch: b, Seconds: secs,
			FLOP: float64(b) * (o5.flop(1, o.DecodePast+1) + 2*float64(o5.dim*o5.cfg.VocabSize)), WeightBytes: lmBytes, Ops: ops})
	}
	return out, nil
}

func visionFLOP(d, inter, layers, t, patch int) float64 {
	fd, fi, ft := float64(d), float64(inter), float64(t)
	perLayer := 2*ft*fd*3*fd + 2*ft*fd*fd + 4*ft*fd*fi + 4*ft*ft*fd
	return float64(layers)*perLayer + 2*(ft-1)*fd*float64(3*patch*patch)
}

func qformerFLOP(d, inter, layers, freq, q, t, dv int) float64 {
	fd, fq, ft := float64(d), float64(q), float64(t)
	total := 0.0
	for i := 0; i < layers; i++ {
		total += 8*fq*fd*fd + 4*fq*fq*fd + 4*fq*fd*float64(inter)
		if i%freq == 0 {
			total += 4*fq*fd*fd + 4*ft*float64(dv)*fd + 4*fq*ft*fd
		}
	}
	return total
}

// flop is the work of n new tokens attending over tk keys.
func (o *OPT) flop(n, tk int) float64 {
	d, f := float64(o.dim), float64(o.cfg.FFNDim)
	return float64(len(o.layers)) * float64(n) * (8*d*d + 4*d*f + 4*float64(tk)*d)
}

// weightBytes is the size of the language model's weights (the head once
// when tied).
func (o *OPT) weightBytes() int {
	n := o.embed.Bytes() + o.positions.Bytes()
	for _, l := range o.layers {
		for _, lin := range []*nn.Linear{l.q, l.k, l.v, l.out, l.fc1, l.fc2} {
			n += lin.W.Bytes()
		}
	}
	if o.lmHead.W != o.embed {
		n += o.lmHead.W.Bytes()
	}
	return n
}

// emptyDecoder returns a decoder for b rows whose cache holds past steps of
// zeros, to time decode steps without a prefill.
func (o *OPT) emptyDecoder(m *Model, b, past int) (*optDecoder, error) {
	d := &optDecoder{m: m, o: o, cache: m.Ops.NewKVCache(len(o.layers), b, b, o.dim, past+1), count: make([]int, b), steps: map[int]*optStep{}}
	if _, err := d.cache.Reserve(past); err != nil {
		return nil, err
	}
	for r := range d.count {
		d.mask = append(d.mask, onesInt(past))
		d.count[r] = past
	}
	return d, nil
}

// rewind drops the last n cached steps (benchmarks repeat one step).
func (d *optDecoder) rewind(n int) error {
	d.cache.Truncate(n)
	for r := range d.mask {
		d.mask[r] = d.mask[r][:len(d.mask[r])-n]
		d.count[r] -= n
	}
	return nil
}
