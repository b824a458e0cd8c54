package blip2

import (
	G "gorgonia.org/gorgonia"

	"blipflow/model/nn"
)

// The glue between the heavy ops, in the model's terms, built on the
// light ops of nn.Ops.

// split3 splits the last dimension of a fused [.., 3d] projection into its
// three [.., d] parts.
func split3(g *nn.Graph, x *G.Node, d int) (a, b, c *G.Node) {
	part := func(i int) *G.Node {
		return columns(g, x, i*d, (i+1)*d)
	}
	return part(0), part(1), part(2)
}

// columns returns x[..., lo:hi].
func columns(g *nn.Graph, x *G.Node, lo, hi int) *G.Node {
	return g.Ops.Slice(x, x.Dims()-1, lo, hi)
}

// token returns x[:, i, :] of a [N,T,D] tensor as [N,D].
func token(g *nn.Graph, x *G.Node, i int) *G.Node {
	s := x.Shape()
	return g.Ops.Reshape(g.Ops.Slice(x, 1, i, i+1), s[0], s[2])
}

// steps returns x[:, lo:hi, :] of a [N,T,D] tensor.
func steps(g *nn.Graph, x *G.Node, lo, hi int) *G.Node {
	return g.Ops.Slice(x, 1, lo, hi)
}

// concatSteps joins [N,Ta,D] and [N,Tb,D] into [N,Ta+Tb,D].
func concatSteps(g *nn.Graph, a, b *G.Node) *G.Node {
	return g.Ops.Concat(a, b, 1)
}
