package blip2

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"blipflow/model/nn"
)

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
	return g.Func(fmt.Sprintf("columns[%d:%d]", lo, hi),
		func(in []tensor.Shape) (tensor.Shape, error) {
			s := in[0].Clone()
			if s[len(s)-1] < hi {
				return nil, fmt.Errorf("columns[%d:%d] of %v", lo, hi, in[0])
			}
			s[len(s)-1] = hi - lo
			return s, nil
		},
		func(in [][]float32, s []tensor.Shape, out []float32) error {
			w := s[0][len(s[0])-1]
			n := hi - lo
			for r := 0; r < len(in[0])/w; r++ {
				copy(out[r*n:(r+1)*n], in[0][r*w+lo:r*w+hi])
			}
			return nil
		}, x)
}

// token returns x[:, i, :] of a [N,T,D] tensor as [N,D].
func token(g *nn.Graph, x *G.Node, i int) *G.Node {
	return g.Func(fmt.Sprintf("token[%d]", i),
		func(in []tensor.Shape) (tensor.Shape, error) { return tensor.Shape{in[0][0], in[0][2]}, nil },
		func(in [][]float32, s []tensor.Shape, out []float32) error {
			t, d := s[0][1], s[0][2]
			for n := 0; n < s[0][0]; n++ {
				copy(out[n*d:(n+1)*d], in[0][(n*t+i)*d:(n*t+i+1)*d])
			}
			return nil
		}, x)
}

// steps returns x[:, lo:hi, :] of a [N,T,D] tensor.
func steps(g *nn.Graph, x *G.Node, lo, hi int) *G.Node {
	return g.Func(fmt.Sprintf("steps[%d:%d]", lo, hi),
		func(in []tensor.Shape) (tensor.Shape, error) { return tensor.Shape{in[0][0], hi - lo, in[0][2]}, nil },
		func(in [][]float32, s []tensor.Shape, out []float32) error {
			t, d := s[0][1], s[0][2]
			for n := 0; n < s[0][0]; n++ {
				copy(out[n*(hi-lo)*d:(n+1)*(hi-lo)*d], in[0][(n*t+lo)*d:(n*t+hi)*d])
			}
			return nil
		}, x)
}

// concatSteps joins [N,Ta,D] and [N,Tb,D] into [N,Ta+Tb,D].
func concatSteps(g *nn.Graph, a, b *G.Node) *G.Node {
	return g.Func("concat_steps",
		func(in []tensor.Shape) (tensor.Shape, error) {
			return tensor.Shape{in[0][0], in[0][1] + in[1][1], in[0][2]}, nil
		},
		func(in [][]float32, s []tensor.Shape, out []float32) error {
			ta, tb, d := s[0][1], s[1][1], s[0][2]
			o := 0
			for n := 0; n < s[0][0]; n++ {
				o += copy(out[o:], in[0][n*ta*d:(n+1)*ta*d])
				o += copy(out[o:], in[1][n*tb*d:(n+1)*tb*d])
			}
			return nil
		}, a, b)
}

type shapeT = tensor.Shape

// shapeSame is the shape function of ops whose output has their input's shape.
func shapeSame(in []tensor.Shape) (tensor.Shape, error) { return in[0].Clone(), nil }
