package blip2

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

	"blipflow/model/config"
	"blipflow/model/nn"
)

// OPT is the OPT decoder-only language model (OPTForCausalLM).
type OPT struct {
	cfg        config.Text
	act        nn.Activation
	embed      *nn.Weight // embed_tokens [V,Dw]
	positions  *nn.Weight // embed_positions [max+2,D]
	projIn     *nn.Linear // Dw -> D when word_embed_proj_dim differs
	projOut    *nn.Linear
	layers     []optLayer
	finalNorm  *nn.Norm
	lmHead     *nn.Linear // [V,Dw], tied to embed when the checkpoint has none
	heads, dim int
}

type optLayer struct {
	q, k, v, out     *nn.Linear
	attnNorm, ffNorm *nn.Norm
	fc1, fc2         *nn.Linear
}

// optPositionOffset is OPT's learned-position offset: position p uses row
// p+2 of embed_positions.
const optPositionOffset = 2

func loadOPT(l *nn.Loader, c config.Text) (*OPT, error) {
	act, ok := nn.ActivationByName(c.ActivationFunction)
	if !ok {
		return nil, fmt.Errorf("text_config.activation_function %q is not supported", c.ActivationFunction)
	}
	d, dw := c.HiddenSize, c.WordEmbedProjDim
	o := &OPT{cfg: c, act: act, heads: c.NumAttentionHeads, dim: d}
	dl := l.Sub("model.decoder")
	o.embed = dl.Matrix("embed_tokens.weight", c.VocabSize, dw)
	o.positions = dl.Tensor("embed_positions.weight", c.MaxPositionEmbeddings+optPositionOffset, d)
	if dw != d {
		o.projIn = dl.Linear("project_in", dw, d, false)
		o.projOut = dl.Linear("project_out", d, dw, false)
	}
	for i := 0; i < c.NumHiddenLayers; i++ {
		ll := dl.Sub(fmt.Sprintf("layers.%d", i))
		norm := func(n string) *nn.Norm {
			if !c.LayerNormElementwiseAffine {
				return &nn.Norm{Dim: d, Eps: 1e-5, Gamma: ones(n, d), Beta: &nn.Weight{Name: n, Shape: []int{d}, Data: make([]float32, d)}}
			}
			return ll.LayerNorm(n, d, 1e-5)
		}
		o.layers = append(o.layers, optLayer{
			q: ll.Linear("self_attn.q_proj", d, d, c.EnableBias), k: ll.Linear("self_attn.k_proj", d, d, c.EnableBias),
			v: ll.Linear("self_attn.v_proj", d, d, c.EnableBias), out: ll.Linear("self_attn.out_proj", d, d, c.EnableBias),
			attnNorm: norm("self_attn_layer_norm"), ffNorm: norm("final_layer_norm"),
			fc1: ll.Linear("fc1", d, c.FFNDim, c.EnableBias), fc2: ll.Linear("fc2", c.FFNDim, d, c.EnableBias),
		})
	}
	if c.DoLayerNormBefore && !c.RemoveFinalLayerNorm {
		o.finalNorm = dl.LayerNorm("final_layer_norm", d, 1e-5)
	}
	head := o.embed
	if l.Has("lm_head.weight") {
		head = l.Matrix("lm_head.weight", c.VocabSize, dw)
	}
	o.lmHead = &nn.Linear{In: dw, Out: c.VocabSize, W: head}
	return o, nil
}

func ones(name string, n int) *nn.Weight {
	w := &nn.Weight{Name: name, Shape: []int{n}, Data: make([]float32, n)}
	for i := range w.Data {
		w.Data[i] = 1
	}
	return w
}

// Embeddings returns the token embedding table.
func (o *OPT) Embeddings() *nn.Weight { return o.embed }

// forward runs the decoder on embeddings x [B,T,Dw] whose new steps have
// the position ids positions (ints [B,T]) and additive attention mask
// [B,T,Tm] over each row's cached steps, writing their keys and values into
// cache at kvPos (ints [B], from cache.Reserve), and returns the final
// hidden states [B,T,Dw].
func (o *OPT) forward(g *nn.Graph, x, positions, kvPos, mask *G.Node, cache *nn.KVCache) *G.Node {
	return o.output(g, o.layerRange(g, o.input(g, x, positions), 0, len(o.layers), kvPos, mask, cache))
}

// input projects the embeddings x [B,T,Dw] to the decoder's width and adds
// the position embeddings.
func (o *OPT) input(g *nn.Graph, x, positions *G.Node) *G.Node {
	if o.projIn != nil {
		x = g.Ops.Linear(x, o.projIn)
	}
	return g.Add(x, g.Ops.Embed(positions, o.positions))
}

// layerRange adds decoder layers [lo,hi) over x [B,T,D] (see forward).
func (o *OPT) layerRange(g *nn.Graph, x *G.Node, lo, hi int, kvPos, mask *G.Node, cache *nn.KVCache) *G.Node {
	spec := nn.AttentionSpec{Heads: o.heads, HeadDim: o.dim / o.heads, Scale: float32(1 / math.Sqrt(float64(o.dim/o.heads)))}
	before := o.cfg.DoLayerNormBefore
	for i := lo; i < hi; i++ {
		l := o.layers[i]
		h := x
		if before {
			h = g.Ops.Norm(h, l.attnNorm)
		}
		k := g.Ops.KVWrite(g.Ops.Linear(h, l.k), kvPos, cache, i, false)
		v := g.Ops.KVWrite(g.Ops.Linear(h, l.v), kvPos, cache, i, true)
		h = g.Ops.Linear(g.Ops.CachedAttention(g.Ops.Linear(h, l.q), k, v, mask, nil, cache, i, spec), l.out)
		x = g.Add(x, h)
		if !before {
			x = g.Ops.Norm(x, l.attnNorm)
		}
		h = x
		if before {
			h = g.Ops.Norm(h, l.ffNorm)
		}
		h = g.Ops.Linear(g.Ops.Activate(g.Ops.Linear(h, l.fc1), o.act), l.fc2)
		x = g.Add(x, h)
		if !before {
			x = g.Ops.Norm(x, l.ffNorm)
		}
		x = g.Checkpoint(x)
	}
	return x
}

// output applies the final norm and projection: hidden states [B,T,Dw].
func (o *OPT) output(g *nn.Graph, x *G.Node) *G.Node {
	if o.finalNorm != nil {
		x = g.Ops.Norm(x, o.finalNorm)
	}
	if o.projOut != nil {
		x = g.Ops.Linear(x, o.projOut)
	}
	return x
}
