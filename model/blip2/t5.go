package blip2

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

	"blipflow/model/config"
	"blipflow/model/nn"
)

// T5 is the T5 / Flan-T5 encoder-decoder language model
// (T5ForConditionalGeneration): RMS norms, relative position buckets,
// gated-GELU feed-forward, no attention scaling.
type T5 struct {
	cfg        config.Text
	act        nn.Activation
	gated      bool
	shared     *nn.Weight
	encoder    t5Stack
	decoder    t5Stack
	lmHead     *nn.Linear
	scaleOut   bool // multiply decoder outputs by d_model^-0.5 before the head
	heads, dkv int
}

type t5Stack struct {
	layers    []t5Layer
	relBias   *nn.Weight // [buckets, heads], from the first block
	finalNorm *nn.Norm
	causal    bool
}

type t5Layer struct {
	selfNorm         *nn.Norm
	q, k, v, o       *nn.Linear
	crossNorm        *nn.Norm // decoder only
	cq, ck, cv, co   *nn.Linear
	ffNorm           *nn.Norm
	wi0, wi1, wi, wo *nn.Linear
}

func loadT5(l *nn.Loader, c config.Text) (*T5, error) {
	actName, gated, err := c.T5FeedForward()
	if err != nil {
		return nil, err
	}
	act, _ := nn.ActivationByName(actName)
	d, inner := c.DModel, c.NumHeads*c.DKV
	t := &T5{cfg: c, act: act, gated: gated, heads: c.NumHeads, dkv: c.DKV}
	t.shared = l.Matrix("shared.weight", c.VocabSize, d)
	eps := c.LayerNormEpsilon
	stack := func(name string, n int, decoder bool) t5Stack {
		sl := l.Sub(name)
		s := t5Stack{causal: decoder, finalNorm: sl.RMSNorm("final_layer_norm", d, eps)}
		for i := 0; i < n; i++ {
			bl := sl.Sub(fmt.Sprintf("block.%d", i))
			sa := bl.Sub("layer.0")
			layer := t5Layer{
				selfNorm: sa.RMSNorm("layer_norm", d, eps),
				q:        sa.Linear("SelfAttention.q", d, inner, false), k: sa.Linear("SelfAttention.k", d, inner, false),
				v: sa.Linear("SelfAttention.v", d, inner, false), o: sa.Linear("SelfAttention.o", inner, d, false),
			}
			if i == 0 {
				s.relBias = sa.Tensor("SelfAttention.relative_attention_bias.weight", c.RelativeAttentionNumBuckets, c.NumHeads)
			}
			ff := bl.Sub("layer.1")
			if decoder {
				ca := bl.Sub("layer.1")
				layer.crossNorm = ca.RMSNorm("layer_norm", d, eps)
				layer.cq, layer.ck = ca.Linear("EncDecAttention.q", d, inner, false), ca.Linear("EncDecAttention.k", d, inner, false)
				layer.cv, layer.co = ca.Linear("EncDecAttention.v", d, inner, false), ca.Linear("EncDecAttention.o", inner, d, false)
				ff = bl.Sub("layer.2")
			}
			layer.ffNorm = ff.RMSNorm("layer_norm", d, eps)
			if gated {
				layer.wi0 = ff.Linear("DenseReluDense.wi_0", d, c.DFF, false)
				layer.wi1 = ff.Linear("DenseReluDense.wi_1", d, c.DFF, false)
			} else {
				layer.wi = ff.Linear("DenseReluDense.wi", d, c.DFF, false)
			}
			layer.wo = ff.Linear("DenseReluDense.wo", c.DFF, d, false)
			s.layers = append(s.layers, layer)
		}
		return s
	}
	t.encoder = stack("encoder", c.NumLayers, false)
	t.decoder = stack("decoder", *c.NumDecoderLayers, true)
	head := t.shared
	if l.Has("lm_head.weight") && !c.TieWordEmbeddings {
		head = l.Matrix("lm_head.weight", c.VocabSize, d)
	}
	t.lmHead = &nn.Linear{In: d, Out: c.VocabSize, W: head}
	t.scaleOut = c.TieWordEmbeddings
	if c.ScaleDecoderOutputs != nil {
		t.scaleOut = *c.ScaleDecoderOutputs
	}
	return t, nil
}

// Embeddings returns the shared token embedding table.
func (t *T5) Embeddings() *nn.Weight { return t.shared }

func (t *T5) spec() nn.AttentionSpec {
	return nn.AttentionSpec{Heads: t.heads, HeadDim: t.dkv, Scale: 1}
}

// feedForward is the T5 dense block.
func (t *T5) feedForward(g *nn.Graph, x *G.Node, l t5Layer) *G.Node {
	if t.gated {
		return g.Ops.Linear(g.Mul(g.Ops.Activate(g.Ops.Linear(x, l.wi0), t.act), g.Ops.Linear(x, l.wi1)), l.wo)
	}
	return g.Ops.Linear(g.Ops.Activate(g.Ops.Linear(x, l.wi), t.act), l.wo)
}

// encode runs the encoder on embeddings x [B,T,D] with padding mask [B,T].
// T5's position bias depends on the distance between steps, so padding
// between a row's tokens (the processor puts it after the image tokens)
// would change the distances its tokens see. Each row's tokens are
// therefore moved together behind its padding, giving the distances the
// row has alone, and the outputs are put back in place.
func (t *T5) encode(g *nn.Graph, x *G.Node, mask [][]int) *G.Node {
	perm, inv, mask := packTokens(mask)
	if perm != nil {
		x = gatherSteps(g, x, perm)
	}
	out := t.encodePacked(g, x, mask)
	if perm != nil {
		out = gatherSteps(g, out, inv)
	}
	return out
}

// packTokens returns, when some row has padding between its tokens, the
// order of each row's steps that puts its padding first and its tokens
// after it in their order (perm), the inverse order and the mask in the
// new order; else nil orders and mask unchanged.
func packTokens(mask [][]int) (perm, inv, packed [][]int) {
	needed := false
	for _, row := range mask {
		first, last, ones := -1, -1, 0
		for j, keep := range row {
			if keep != 0 {
				if first < 0 {
					first = j
				}
				last, ones = j, ones+1
			}
		}
		needed = needed || (ones > 0 && last-first+1 != ones)
	}
	if !needed {
		return nil, nil, mask
	}
	perm, inv, packed = make([][]int, len(mask)), make([][]int, len(mask)), make([][]int, len(mask))
	for r, row := range mask {
		for j, keep := range row {
			if keep == 0 {
				perm[r] = append(perm[r], j)
			}
		}
		for j, keep := range row {
			if keep != 0 {
				perm[r] = append(perm[r], j)
			}
		}
		inv[r], packed[r] = make([]int, len(row)), make([]int, len(row))
		for j, src := range perm[r] {
			inv[r][src] = j
			packed[r][j] = row[src]
		}
	}
	return perm, inv, packed
}

// gatherSteps reorders the steps of each row of x [B,T,D]: step j of row r
// becomes step order[r][j] of x. Each order[r] is a permutation, so this is
// the scatter of x's rows onto the places they move to.
func gatherSteps(g *nn.Graph, x *G.Node, order [][]int) *G.Node {
	n := x.Shape()[1]
	at := make([]int, len(order)*n)
	for r, row := range order {
		for j, src := range row {
			at[r*n+src] = r*n + j
		}
	}
	return g.Ops.Scatter(x, x, at)
}

// encodePacked runs the encoder layers on x [B,T,D] with padding mask [B,T].
func (t *T5) encodePacked(g *nn.Graph, x *G.Node, mask [][]int) *G.Node {
	b, n := len(mask), len(mask[0])
	attn := make([]float32, b*n*n)
	for r := range mask {
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				if mask[r][j] == 0 {
					attn[(r*n+i)*n+j] = maskMin
				}
			}
		}
	}
	m := g.Input(attn, b, n, n)
	bias := g.Input(t.positionBias(t.encoder.relBias, 0, n, n, true), t.heads, n, n)
	for _, l := range t.encoder.layers {
		h := g.Ops.Norm(x, l.selfNorm)
		h = g.Ops.Attention(g.Ops.Linear(h, l.q), g.Ops.Linear(h, l.k), g.Ops.Linear(h, l.v), m, bias, t.spec())
		x = g.Add(x, g.Ops.Linear(h, l.o))
		x = g.Checkpoint(g.Add(x, t.feedForward(g, g.Ops.Norm(x, l.ffNorm), l)))
	}
	return g.Ops.Norm(x, t.encoder.finalNorm)
}

// t5State is the decoder's cache: self-attention K/V per layer and the
// encoder's projected K/V per layer, with the encoder padding mask.
type t5State struct {
	self, cross *nn.KVCache
	encMask     [][]int
}

// t5Pass is a decoder pass's host inputs: n tokens for each of b rows,
// masks and bias as wide as width steps (at least the longest row after
// the pass). A compiled step graph keeps one and refills it every step.
type t5Pass struct {
	b, n, width, te int
	ids, selfAt     []int
	selfMask, bias  []float32 // [B,n,width], [H,n,width]
	crossMask       []float32 // [B,n,te]
	crossAt         []int     // first pass only: where the encoder's K/V go
}

func (t *T5) newPass(b, n, width, te int, first bool) *t5Pass {
	p := &t5Pass{b: b, n: n, width: width, te: te, ids: make([]int, b*n), selfAt: make([]int, b),
		selfMask: make([]float32, b*n*width), bias: make([]float32, t.heads*n*width), crossMask: make([]float32, b*n*te)}
	if first {
		p.crossAt = make([]int, b)
	}
	return p
}

// fill reserves the pass's steps in the cache and sets its inputs for ids.
func (p *t5Pass) fill(t *T5, st *t5State, ids []int) error {
	past := st.self.MaxLen()
	kvAt, err := st.self.Reserve(p.n)
	if err != nil {
		return err
	}
	if p.crossAt != nil {
		at, err := st.cross.Reserve(st.cross.Capacity)
		if err != nil {
			st.self.Truncate(p.n)
			return err
		}
		copy(p.crossAt, at)
	}
	copy(p.ids, ids)
	copy(p.selfAt, kvAt)
	tk := past + p.n
	clear(p.selfMask)
	for r := 0; r < p.b; r++ {
		for i := 0; i < p.n; i++ {
			for j := past + i + 1; j < tk; j++ {
				p.selfMask[(r*p.n+i)*p.width+j] = maskMin
			}
		}
	}
	bias := t.positionBias(t.decoder.relBias, past, p.n, tk, false)
	for hi := 0; hi < t.heads*p.n; hi++ {
		copy(p.bias[hi*p.width:hi*p.width+tk], bias[hi*tk:(hi+1)*tk])
	}
	clear(p.crossMask)
	for r := 0; r < p.b; r++ {
		for i := 0; i < p.n; i++ {
			for j, keep := range st.encMask[r] {
				if keep == 0 {
					p.crossMask[(r*p.n+i)*p.te+j] = maskMin
				}
			}
		}
	}
	return nil
}

// decode adds the decoder over a pass's inputs to g, returning hidden
// states [B,n,D] ready for the head. With enc (the first pass) it also
// fills the cross-attention cache.
func (t *T5) decode(g *nn.Graph, p *t5Pass, st *t5State, enc *G.Node) *G.Node {
	b, n := p.b, p.n
	selfAt := g.InputInts(p.selfAt, b)
	var crossAt *G.Node
	if enc != nil {
		crossAt = g.InputInts(p.crossAt, b)
	}
	x := g.Ops.Embed(g.InputInts(p.ids, b, n), t.shared)
	selfMask := g.Input(p.selfMask, b, n, p.width)
	bias := g.Input(p.bias, t.heads, n, p.width)
	crossMask := g.Input(p.crossMask, b, n, p.te)
	for i, l := range t.decoder.layers {
		h := g.Ops.Norm(x, l.selfNorm)
		k := g.Ops.KVWrite(g.Ops.Linear(h, l.k), selfAt, st.self, i, false)
		v := g.Ops.KVWrite(g.Ops.Linear(h, l.v), selfAt, st.self, i, true)
		h = g.Ops.CachedAttention(g.Ops.Linear(h, l.q), k, v, selfMask, bias, st.self, i, t.spec())
		x = g.Add(x, g.Ops.Linear(h, l.o))
		h = g.Ops.Norm(x, l.crossNorm)
		var ck, cv *G.Node
		if enc != nil { // first pass: project the encoder output into the cross cache
			ck = g.Ops.KVWrite(g.Ops.Linear(enc, l.ck), crossAt, st.cross, i, false)
			cv = g.Ops.KVWrite(g.Ops.Linear(enc, l.cv), crossAt, st.cross, i, true)
		}
		h = g.Ops.CachedAttention(g.Ops.Linear(h, l.cq), ck, cv, crossMask, nil, st.cross, i, t.spec())
		x = g.Add(x, g.Ops.Linear(h, l.co))
		x = g.Checkpoint(g.Add(x, t.feedForward(g, g.Ops.Norm(x, l.ffNorm), l)))
	}
	x = g.Ops.Norm(x, t.decoder.finalNorm)
	if t.scaleOut {
		x = g.Ops.Scale(x, float32(math.Pow(float64(t.cfg.DModel), -0.5)))
	}
	return x
}

// positionBias computes the relative position bias [H,n,tk] for queries at
// positions past..past+n-1 over keys 0..tk-1.
func (t *T5) positionBias(table *nn.Weight, past, n, tk int, bidirectional bool) []float32 {
	h := t.heads
	out := make([]float32, h*n*tk)
	for i := 0; i < n; i++ {
		for j := 0; j < tk; j++ {
			bucket := relativeBucket(j-(past+i), bidirectional, t.cfg.RelativeAttentionNumBuckets, t.cfg.RelativeAttentionMaxDistance)
			for hh := 0; hh < h; hh++ {
				out[(hh*n+i)*tk+j] = table.Data[bucket*h+hh]
			}
		}
	}
	return out
}

// relativeBucket maps a key-minus-query distance to T5's bucket: exact for
// small distances, logarithmic up to maxDistance, computed in float32 as the
// reference does.
func relativeBucket(rel int, bidirectional bool, buckets, maxDistance int) int {
	out := 0
	if bidirectional {
		buckets /= 2
		if rel > 0 {
			out += buckets
		}
		if rel < 0 {
			rel = -rel
		}
	} else {
		rel = -min(rel, 0)
	}
	exact := buckets / 2
	if rel < exact {
		return out + rel
	}
	ratio := float32(math.Log(float64(float32(rel) / float32(exact))))
	large := exact + int(ratio/float32(math.Log(float64(maxDistance)/float64(exact)))*float32(buckets-exact))
	return out + min(large, buckets-1)
}
