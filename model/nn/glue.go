package nn

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The light ops between the heavy ones (slices, joins, splices, reshapes).
// They are part of Ops, like the heavy ops, so values never have to leave
// the device an implementation keeps them on.

// span returns the product of s[lo:hi].
func span(s tensor.Shape, lo, hi int) int {
	n := 1
	for _, d := range s[lo:hi] {
		n *= d
	}
	return n
}

// Slice implements Ops.
func (c *CPU) Slice(x *G.Node, axis, lo, hi int) *G.Node {
	return c.apply(&op{
		name: fmt.Sprintf("slice(%d)[%d:%d]", axis, lo, hi), inDims: []int{x.Dims()}, outDims: x.Dims(),
		shape: func(in []tensor.Shape) (tensor.Shape, error) {
			s := in[0]
			if axis < 0 || axis >= len(s) || lo < 0 || hi > s[axis] || lo >= hi {
				return nil, fmt.Errorf("slice [%d:%d] of axis %d of %v", lo, hi, axis, s)
			}
			out := s.Clone()
			out[axis] = hi - lo
			return out, nil
		},
		do: func(in []*tensor.Dense, out []float32) error {
			s := in[0].Shape()
			outer, inner := span(s, 0, axis), span(s, axis+1, len(s))
			x, n, w := f32(in[0]), (hi-lo)*inner, s[axis]*inner
			for o := 0; o < outer; o++ {
				copy(out[o*n:(o+1)*n], x[o*w+lo*inner:o*w+hi*inner])
			}
			return nil
		},
	}, x)
}

// Concat implements Ops.
func (c *CPU) Concat(a, b *G.Node, axis int) *G.Node {
	return c.apply(&op{
		name: fmt.Sprintf("concat(%d)", axis), inDims: []int{a.Dims(), b.Dims()}, outDims: a.Dims(),
		shape: func(in []tensor.Shape) (tensor.Shape, error) {
			sa, sb := in[0], in[1]
			ok := len(sa) == len(sb) && axis >= 0 && axis < len(sa)
			for i := range sa {
				ok = ok && (i == axis || sa[i] == sb[i])
			}
			if !ok {
				return nil, fmt.Errorf("concat of %v and %v along axis %d", sa, sb, axis)
			}
			out := sa.Clone()
			out[axis] += sb[axis]
			return out, nil
		},
		do: func(in []*tensor.Dense, out []float32) error {
			sa, sb := in[0].Shape(), in[1].Shape()
			outer := span(sa, 0, axis)
			na, nb := span(sa, axis, len(sa)), span(sb, axis, len(sb))
			x, y := f32(in[0]), f32(in[1])
			o := 0
			for i := 0; i < outer; i++ {
				o += copy(out[o:], x[i*na:(i+1)*na])
				o += copy(out[o:], y[i*nb:(i+1)*nb])
			}
			return nil
		},
	}, a, b)
}

// Scatter implements Ops.
func (c *CPU) Scatter(x, src *G.Node, at []int) *G.Node {
	return c.apply(&op{
		name: "scatter", inDims: []int{x.Dims(), src.Dims()}, outDims: x.Dims(),
		shape: func(in []tensor.Shape) (tensor.Shape, error) {
			sx, ss := in[0], in[1]
			d := sx[len(sx)-1]
			if ss[len(ss)-1] != d || rows(ss) != len(at) {
				return nil, fmt.Errorf("scatter of %v into %v at %d rows", ss, sx, len(at))
			}
			for _, r := range at {
				if r < 0 || r >= rows(sx) {
					return nil, fmt.Errorf("scatter: row %d outside %v", r, sx)
				}
			}
			return sx.Clone(), nil
		},
		do: func(in []*tensor.Dense, out []float32) error {
			s := in[0].Shape()
			d := s[len(s)-1]
			copy(out, f32(in[0]))
			src := f32(in[1])
			for i, r := range at {
				copy(out[r*d:(r+1)*d], src[i*d:(i+1)*d])
			}
			return nil
		},
	}, x, src)
}

// Reshape implements Ops.
func (c *CPU) Reshape(x *G.Node, shape ...int) *G.Node {
	want := tensor.Shape(shape)
	return c.apply(&op{
		name: fmt.Sprintf("reshape%v", shape), inDims: []int{x.Dims()}, outDims: len(shape),
		shape: func(in []tensor.Shape) (tensor.Shape, error) {
			if in[0].TotalSize() != want.TotalSize() {
				return nil, fmt.Errorf("reshape %v to %v", in[0], want)
			}
			return want.Clone(), nil
		},
		do: func(in []*tensor.Dense, out []float32) error {
			copy(out, f32(in[0]))
			return nil
		},
	}, x)
}

// Scale implements Ops.
func (c *CPU) Scale(x *G.Node, s float32) *G.Node {
	return c.apply(&op{
		name: fmt.Sprintf("scale(%g)", s), inDims: []int{x.Dims()}, outDims: x.Dims(), shape: shapeSame,
		do: func(in []*tensor.Dense, out []float32) error {
			for i, v := range f32(in[0]) {
				out[i] = v * s
			}
			return nil
		},
	}, x)
}

// Patches implements Ops.
func (c *CPU) Patches(x *G.Node, p int) *G.Node {
	return c.apply(&op{
		name: fmt.Sprintf("patches(%d)", p), inDims: []int{4}, outDims: 3,
		shape: func(in []tensor.Shape) (tensor.Shape, error) {
			s := in[0]
			if len(s) != 4 || s[2]%p != 0 || s[3]%p != 0 {
				return nil, fmt.Errorf("patches of %d pixels from %v, want [N,C,H,W] with H and W multiples of %d", p, s, p)
			}
			return tensor.Shape{s[0], (s[2] / p) * (s[3] / p), s[1] * p * p}, nil
		},
		do: func(in []*tensor.Dense, out []float32) error {
			s := in[0].Shape()
			ch, h, w := s[1], s[2], s[3]
			src := f32(in[0])
			o := 0
			for n := 0; n < s[0]; n++ {
				for gy := 0; gy < h/p; gy++ {
					for gx := 0; gx < w/p; gx++ {
						for k := 0; k < ch; k++ {
							for y := 0; y < p; y++ {
								row := ((n*ch+k)*h+gy*p+y)*w + gx*p
								o += copy(out[o:o+p], src[row:row+p])
							}
						}
					}
				}
			}
			return nil
		},
	}, x)
}

// Add implements Ops.
func (c *CPU) Add(a, b *G.Node) *G.Node {
	return c.elementwise("add", a, b, false)
}

// Mul implements Ops.
func (c *CPU) Mul(a, b *G.Node) *G.Node {
	return c.elementwise("mul", a, b, true)
}

// elementwise adds (or, with mul, multiplies) same-shaped a and b.
func (c *CPU) elementwise(name string, a, b *G.Node, mul bool) *G.Node {
	return c.apply(&op{
		name: name, inDims: []int{a.Dims(), b.Dims()}, outDims: a.Dims(),
		shape: func(in []tensor.Shape) (tensor.Shape, error) {
			if !in[0].Eq(in[1]) {
				return nil, fmt.Errorf("%s of %v and %v", name, in[0], in[1])
			}
			return in[0].Clone(), nil
		},
		do: func(in []*tensor.Dense, out []float32) error {
			x, y := f32(in[0]), f32(in[1])
			parallel(len(out), 1<<15, func(lo, hi int) {
				o, x, y := out[lo:hi], x[lo:hi], y[lo:hi]
				if mul {
					for i := range o {
						o[i] = x[i] * y[i]
					}
					return
				}
				for i := range o {
					o[i] = x[i] + y[i]
				}
			})
			return nil
		},
	}, a, b)
}

// Barrier implements Ops.
func (c *CPU) Barrier(x *G.Node, check func() error) *G.Node {
	return c.apply(&op{
		name: "barrier", inDims: []int{x.Dims()}, outDims: x.Dims(), shape: shapeSame,
		do: func(in []*tensor.Dense, out []float32) error {
			if err := check(); err != nil {
				return err
			}
			copy(out, f32(in[0]))
			return nil
		},
	}, x)
}
