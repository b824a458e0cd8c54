package nn

import (
	"context"
	"fmt"
	"testing"

	G "gorgonia.org/gorgonia"

	"blipflow/model/blas"
)

func seq(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(i)
	}
	return out
}

func TestGlueOps(t *testing.T) {
	c := NewCPU(blas.Gonum{})
	g := NewGraph(c)
	x := g.Input(seq(12), 2, 3, 2)
	slice := c.Slice(x, 1, 1, 3)
	cols := c.Slice(x, 2, 1, 2)
	cat := c.Concat(c.Slice(x, 1, 0, 1), c.Slice(x, 1, 2, 3), 1)
	scat := c.Scatter(x, g.Input([]float32{-1, -2, -3, -4}, 2, 2), []int{1, 5})
	resh := c.Reshape(slice, 4, 2)
	scale := c.Scale(x, 0.5)
	px := g.Input(seq(2*4*4), 1, 2, 4, 4)
	patches := c.Patches(px, 2)
	if err := g.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		got  []float32
		want string
	}{
		{"slice steps", val(slice), "[2 3 4 5 8 9 10 11]"},
		{"slice columns", val(cols), "[1 3 5 7 9 11]"},
		{"concat", val(cat), "[0 1 4 5 6 7 10 11]"},
		{"scatter", val(scat), "[0 1 -1 -2 4 5 6 7 8 9 -3 -4]"},
		{"reshape", val(resh), "[2 3 4 5 8 9 10 11]"},
		{"scale", val(scale)[:4], "[0 0.5 1 1.5]"},
		// patch (0,0): channel 0 rows 0-1 cols 0-1, then channel 1.
		{"patches", val(patches)[:8], "[0 1 4 5 16 17 20 21]"},
	} {
		if s := fmt.Sprint(tc.got); s != tc.want {
			t.Errorf("%s = %s, want %s", tc.name, s, tc.want)
		}
	}
	if _, s := Value(patches); fmt.Sprint(s) != "[1 4 8]" {
		t.Errorf("patches shape %v", s)
	}
}

func val(n *G.Node) []float32 {
	d, _ := Value(n)
	return d
}
