package blip2

import (
	"context"
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"

	"blipflow/model/config"
	"blipflow/model/nn"
)

// VisionEncoder is the ViT image encoder (ViT-g in the released models):
// patch embedding, class token, position embedding, pre-LN transformer
// blocks and a final layer norm.
type VisionEncoder struct {
	cfg        config.Vision
	act        nn.Activation
	patch      *nn.Linear // the patch convolution as a linear map of flattened patches
	classToken *nn.Weight
	positions  *nn.Weight
	layers     []visionLayer
	postNorm   *nn.Norm
}

type visionLayer struct {
	norm1, norm2 *nn.Norm
	qkv          *nn.Linear // fused query/key/value projection
	proj         *nn.Linear
	fc1, fc2     *nn.Linear
}

// NumPositions returns the number of tokens per image (patches + class).
func NumPositions(c config.Vision) int {
	g := c.ImageSize / c.PatchSize
	return g*g + 1
}

func loadVision(l *nn.Loader, c config.Vision) (*VisionEncoder, error) {
	act, ok := nn.ActivationByName(c.HiddenAct)
	if !ok {
		return nil, fmt.Errorf("vision_config.hidden_act %q is not supported", c.HiddenAct)
	}
	d, p := c.HiddenSize, c.PatchSize
	v := &VisionEncoder{cfg: c, act: act}
	emb := l.Sub("embeddings")
	conv := emb.Tensor("patch_embedding.weight", d, 3, p, p)
	v.patch = &nn.Linear{In: 3 * p * p, Out: d, W: &nn.Weight{Name: conv.Name, Shape: []int{d, 3 * p * p}, Data: conv.Data},
		B: emb.Tensor("patch_embedding.bias", d)}
	v.classToken = emb.Tensor("class_embedding", 1, 1, d)
	v.positions = emb.Tensor("position_embedding", 1, NumPositions(c), d)
	for i := 0; i < c.NumHiddenLayers; i++ {
		ll := l.Sub(fmt.Sprintf("encoder.layers.%d", i))
		layer := visionLayer{
			norm1: ll.LayerNorm("layer_norm1", d, c.LayerNormEps),
			norm2: ll.LayerNorm("layer_norm2", d, c.LayerNormEps),
			qkv:   ll.Linear("self_attn.qkv", d, 3*d, false),
			proj:  ll.Linear("self_attn.projection", d, d, true),
			fc1:   ll.Linear("mlp.fc1", d, c.IntermediateSize, true),
			fc2:   ll.Linear("mlp.fc2", c.IntermediateSize, d, true),
		}
		layer.qkv.B = qkvBias(ll.Sub("self_attn"), d, c.QKVBias)
		v.layers = append(v.layers, layer)
	}
	v.postNorm = l.LayerNorm("post_layernorm", d, c.LayerNormEps)
	return v, nil
}

// qkvBias returns the fused projection's bias: transformers 5 saves it as
// qkv.bias; the released checkpoints hold q_bias and v_bias (the key has no
// bias).
func qkvBias(l *nn.Loader, d int, enabled bool) *nn.Weight {
	switch {
	case !enabled:
		return nil
	case l.Has("qkv.bias"):
		return l.Tensor("qkv.bias", 3*d)
	}
	q, v := l.Tensor("q_bias", d), l.Tensor("v_bias", d)
	b := make([]float32, 3*d)
	copy(b, q.Data)
	if v.Data != nil {
		copy(b[2*d:], v.Data)
	}
	return &nn.Weight{Name: q.Name + "+v_bias", Shape: []int{3 * d}, Data: b}
}

// visionLayersPerGraph is how many encoder layers one graph runs. A graph
// keeps every intermediate value until it is done (about 31 MB per layer
// and image for ViT-g), so the encoder runs as a chain of small graphs.
var visionLayersPerGraph = 1

// Encode turns pixels [N,3,H,W] into hidden states [N,T,D]
// (last_hidden_state, after the post layer norm), running the layers a few
// at a time so the memory of their intermediate values stays small. A
// cancelled ctx stops it between layers.
func (v *VisionEncoder) Encode(ctx context.Context, ops nn.Ops, pixels []float32, n int) ([]float32, error) {
	size := v.cfg.ImageSize
	g := nn.NewGraph(ops)
	x := v.embed(g, g.Ops.Linear(v.patchify(g, g.Input(pixels, n, 3, size, size)), v.patch))
	t, d := NumPositions(v.cfg), v.cfg.HiddenSize
	for lo := 0; ; lo += visionLayersPerGraph {
		hi := min(lo+visionLayersPerGraph, len(v.layers))
		x = v.forward(g, x, lo, hi)
		if hi == len(v.layers) {
			x = g.Ops.Norm(x, v.postNorm)
		}
		if err := g.Run(ctx); err != nil {
			return nil, err
		}
		h, _ := nn.Value(x)
		if hi == len(v.layers) {
			return h, nil
		}
		g = nn.NewGraph(ops)
		x = g.Input(h, n, t, d)
	}
}

// forward adds layers [lo,hi) of the encoder over x [N,T,D] to g.
func (v *VisionEncoder) forward(g *nn.Graph, x *G.Node, lo, hi int) *G.Node {
	d, heads := v.cfg.HiddenSize, v.cfg.NumAttentionHeads
	spec := nn.AttentionSpec{Heads: heads, HeadDim: d / heads, Scale: float32(1 / math.Sqrt(float64(d/heads)))}
	for _, l := range v.layers[lo:hi] {
		h := g.Ops.Norm(x, l.norm1)
		qkv := g.Ops.Linear(h, l.qkv)
		q, k, vv := split3(g, qkv, d)
		h = g.Ops.Attention(q, k, vv, nil, nil, spec)
		x = g.Add(x, g.Ops.Linear(h, l.proj))
		h = g.Ops.Norm(x, l.norm2)
		h = g.Ops.Linear(g.Ops.Activate(g.Ops.Linear(h, l.fc1), v.act), l.fc2)
		x = g.Checkpoint(g.Add(x, h))
	}
	return x
}

// Pooled returns pooler_output [N,D]: the class token of the last hidden
// state, layer-normed once more by the post layer norm (as the reference
// does).
func (v *VisionEncoder) Pooled(g *nn.Graph, hidden *G.Node) *G.Node {
	return g.Ops.Norm(token(g, hidden, 0), v.postNorm)
}

// patchify turns [N,3,H,W] into [N,P,3·p·p], each patch flattened in the
// (channel, row, column) order of the convolution weight.
func (v *VisionEncoder) patchify(g *nn.Graph, pixels *G.Node) *G.Node {
	return g.Ops.Patches(pixels, v.cfg.PatchSize)
}

// embed prepends the class token and adds the position embedding, both as
// table lookups: the class token is a table of one row.
func (v *VisionEncoder) embed(g *nn.Graph, patches *G.Node) *G.Node {
	n, t := patches.Shape()[0], NumPositions(v.cfg)
	class := g.Ops.Embed(g.InputInts(make([]int, n), n, 1), v.classToken)
	ids := make([]int, n*t)
	for i := range ids {
		ids[i] = i % t
	}
	return g.Add(concatSteps(g, class, patches), g.Ops.Embed(g.InputInts(ids, n, t), v.positions))
}
