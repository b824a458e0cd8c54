package blip2

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

	"blipflow/model/config"
	"blipflow/model/nn"
)

// QFormer is the Querying Transformer: learned query tokens that attend to
// each other (and to text, when given) and, every cross_attention_frequency
// layers, to the image features. It is BERT-style: post-LN residual blocks.
type QFormer struct {
	cfg     config.QFormer
	act     nn.Activation
	queries *nn.Weight // query_tokens [1,Q,D]
	norm    *nn.Norm   // applied to the input embeddings
	layers  []qformerLayer
}

type qformerLayer struct {
	self  bertAttention
	cross *bertAttention // nil on layers without cross-attention
	// The query positions and the text positions have separate
	// feed-forward weights.
	queryFFN, textFFN *bertFFN
}

type bertAttention struct {
	query, key, value, out *nn.Linear
	norm                   *nn.Norm
}

type bertFFN struct {
	in, out *nn.Linear
	norm    *nn.Norm
}

func loadQFormer(l *nn.Loader, cfg config.BLIP2) (*QFormer, error) {
	c := cfg.QFormer
	act, ok := nn.ActivationByName(c.HiddenAct)
	if !ok {
		return nil, fmt.Errorf("qformer_config.hidden_act %q is not supported", c.HiddenAct)
	}
	d := c.HiddenSize
	q := &QFormer{cfg: c, act: act}
	q.queries = l.Tensor("query_tokens", 1, cfg.NumQueryTokens, d)
	ql := l.Sub("qformer")
	q.norm = ql.LayerNorm("layernorm", d, c.LayerNormEps)
	attn := func(l *nn.Loader, kvWidth int) bertAttention {
		return bertAttention{
			query: l.Linear("attention.query", d, d, true),
			key:   l.Linear("attention.key", kvWidth, d, true),
			value: l.Linear("attention.value", kvWidth, d, true),
			out:   l.Linear("output.dense", d, d, true),
			norm:  l.LayerNorm("output.LayerNorm", d, c.LayerNormEps),
		}
	}
	ffn := func(l *nn.Loader, in, out string) *bertFFN {
		return &bertFFN{
			in:   l.Linear(in+".dense", d, c.IntermediateSize, true),
			out:  l.Linear(out+".dense", c.IntermediateSize, d, true),
			norm: l.LayerNorm(out+".LayerNorm", d, c.LayerNormEps),
		}
	}
	for i := 0; i < c.NumHiddenLayers; i++ {
		ll := ql.Sub(fmt.Sprintf("encoder.layer.%d", i))
		layer := qformerLayer{self: attn(ll.Sub("attention"), d), queryFFN: ffn(ll, "intermediate_query", "output_query")}
		if i%c.CrossAttentionFrequency == 0 {
			cross := attn(ll.Sub("crossattention"), c.EncoderHiddenSize)
			layer.cross = &cross
		}
		if ll.Has("intermediate.dense.weight") {
			layer.textFFN = ffn(ll, "intermediate", "output")
		}
		q.layers = append(q.layers, layer)
	}
	return q, nil
}

// QFormerInput is what the Q-Former reads besides its learned queries.
type QFormerInput struct {
	// Image is the vision encoder's last_hidden_state [N,T,Dv]; nil runs the
	// Q-Former without cross-attention (text only).
	Image *G.Node
	// Text is the embedded text [N,Tt,D] placed after the queries (nil for
	// none), with Mask its [N,Tt] attention mask (1 keep, 0 pad).
	Text *G.Node
	Mask []int
	// NoQueries leaves out the learned queries (text-only features).
	NoQueries bool
	// N is the batch size (needed when Image and Text are nil).
	N int
}

// Forward runs the Q-Former over image features [N,T,Dv] with the learned
// queries only, returning last_hidden_state [N,Q,D].
func (q *QFormer) Forward(g *nn.Graph, image *G.Node) *G.Node {
	return q.Run(g, QFormerInput{Image: image, N: image.Shape()[0]})
}

// Run is the general Q-Former: queries and/or text, with or without the
// image. It returns the hidden states of every position [N,Q+Tt,D].
func (q *QFormer) Run(g *nn.Graph, in QFormerInput) *G.Node {
	d, heads := q.cfg.HiddenSize, q.cfg.NumAttentionHeads
	spec := nn.AttentionSpec{Heads: heads, HeadDim: d / heads, Scale: float32(1 / math.Sqrt(float64(d/heads)))}
	nq := 0
	var x *G.Node
	if !in.NoQueries {
		nq = q.queries.Shape[1]
		x = q.expandQueries(g, in.N)
	}
	var mask *G.Node
	if in.Text != nil {
		if x == nil {
			x = in.Text
		} else {
			x = concatSteps(g, x, in.Text)
		}
		mask = paddingMask(g, in.N, nq, in.Mask)
	}
	x = g.Ops.Norm(x, q.norm)
	total := x.Shape()[1]
	for _, l := range q.layers {
		x = g.Ops.Norm(g.Add(x, g.Ops.Linear(g.Ops.Attention(
			g.Ops.Linear(x, l.self.query), g.Ops.Linear(x, l.self.key), g.Ops.Linear(x, l.self.value), mask, nil, spec),
			l.self.out)), l.self.norm)
		var qpart, tpart *G.Node
		switch {
		case nq == 0:
			tpart = x
		case nq == total:
			qpart = x
		default:
			qpart, tpart = steps(g, x, 0, nq), steps(g, x, nq, total)
		}
		if qpart != nil {
			if l.cross != nil && in.Image != nil {
				c := l.cross
				h := g.Ops.Attention(g.Ops.Linear(qpart, c.query), g.Ops.Linear(in.Image, c.key), g.Ops.Linear(in.Image, c.value), nil, nil, spec)
				qpart = g.Ops.Norm(g.Add(qpart, g.Ops.Linear(h, c.out)), c.norm)
			}
			qpart = q.feedForward(g, qpart, l.queryFFN)
		}
		if tpart != nil {
			tpart = q.feedForward(g, tpart, l.textFFN)
		}
		switch {
		case qpart == nil:
			x = tpart
		case tpart == nil:
			x = qpart
		default:
			x = concatSteps(g, qpart, tpart)
		}
		x = g.Checkpoint(x)
	}
	return x
}

func (q *QFormer) feedForward(g *nn.Graph, x *G.Node, f *bertFFN) *G.Node {
	h := g.Ops.Linear(g.Ops.Activate(g.Ops.Linear(x, f.in), q.act), f.out)
	return g.Ops.Norm(g.Add(x, h), f.norm)
}

// expandQueries repeats the learned query tokens for n images: [n,Q,D].
func (q *QFormer) expandQueries(g *nn.Graph, n int) *G.Node {
	per := len(q.queries.Data)
	data := make([]float32, n*per)
	for i := 0; i < n; i++ {
		copy(data[i*per:], q.queries.Data)
	}
	return g.Input(data, n, q.queries.Shape[1], q.queries.Shape[2])
}

// maskMin is the additive mask value for a hidden position, as the reference
// uses (the float32 minimum, not -inf, so a fully masked row stays finite).
const maskMin = -math.MaxFloat32

// paddingMask builds the additive [N,T,T] self-attention mask for nq query
// positions (always visible) followed by text positions masked by mask
// ([N,Tt], 1 keep).
func paddingMask(g *nn.Graph, n, nq int, mask []int) *G.Node {
	tt := len(mask) / n
	t := nq + tt
	data := make([]float32, n*t*t)
	for b := 0; b < n; b++ {
		for i := 0; i < t; i++ {
			for j := nq; j < t; j++ {
				if mask[b*tt+j-nq] == 0 {
					data[(b*t+i)*t+j] = maskMin
				}
			}
		}
	}
	return g.Input(data, n, t, t)
}
