package nn

import (
	"context"
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Graph is one forward computation: a Gorgonia expression graph built with
// Ops, run once on a tape machine.
type Graph struct {
	G      *G.ExprGraph
	Ops    Ops
	inputs int
	// ctx is the context of the run in progress, read by Checkpoint ops.
	ctx *context.Context
}

// NewGraph returns an empty graph whose heavy ops come from ops.
func NewGraph(ops Ops) *Graph {
	ctx := context.Background()
	return &Graph{G: G.NewGraph(), Ops: ops, ctx: &ctx}
}

// Checkpoint passes x through unchanged, failing the run with the context's
// error when the context given to Run is done by then: model code puts one
// after each layer, so a cancelled run stops between layers.
func (g *Graph) Checkpoint(x *G.Node) *G.Node {
	ctx := g.ctx
	return g.Ops.Barrier(x, func() error { return (*ctx).Err() })
}

func shapeSame(in []tensor.Shape) (tensor.Shape, error) { return in[0].Clone(), nil }

// Input adds a float32 input tensor.
func (g *Graph) Input(data []float32, shape ...int) *G.Node {
	g.inputs++
	t := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
	return G.NodeFromAny(g.G, t, G.WithName(fmt.Sprintf("in%d", g.inputs)))
}

// InputInts adds an int input tensor (token ids).
func (g *Graph) InputInts(data []int, shape ...int) *G.Node {
	g.inputs++
	t := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(data))
	return G.NodeFromAny(g.G, t, G.WithName(fmt.Sprintf("ids%d", g.inputs)))
}

// Add is elementwise addition of same-shaped tensors (residuals).
func (g *Graph) Add(a, b *G.Node) *G.Node { return g.Ops.Add(a, b) }

// Mul is the elementwise product of same-shaped tensors.
func (g *Graph) Mul(a, b *G.Node) *G.Node { return g.Ops.Mul(a, b) }

// Run executes the graph once; a done ctx stops it at the next Checkpoint.
func (g *Graph) Run(ctx context.Context) error {
	r := g.Compile()
	defer r.Close()
	return r.Run(ctx)
}

// Compile prepares the graph to be run any number of times (a decode step):
// between runs, change the data of its inputs in place (the slices given to
// Input and InputInts) and call Run again.
func (g *Graph) Compile() *Runner { return &Runner{m: G.NewTapeMachine(g.G), ctx: g.ctx} }

// Runner runs a compiled graph.
type Runner struct {
	m   G.VM
	ctx *context.Context
}

// Run executes the graph on the current input data; a done ctx stops it at
// the next Checkpoint with ctx's error.
func (r *Runner) Run(ctx context.Context) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	*r.ctx = ctx
	defer func() { *r.ctx = context.Background() }()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("nn: running graph: %v", p)
		}
	}()
	r.m.Reset()
	if err := r.m.RunAll(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil { // stopped at a checkpoint
			return fmt.Errorf("nn: graph stopped: %w", ctxErr)
		}
		return fmt.Errorf("nn: running graph: %w", err)
	}
	return nil
}

// Close releases the machine.
func (r *Runner) Close() { r.m.Close() }

// Value returns a node's computed float32 data and shape.
func Value(n *G.Node) ([]float32, []int) {
	d := n.Value().(*tensor.Dense)
	return d.Data().([]float32), []int(d.Shape().Clone())
}

// Func adds a light custom op (reshapes, splices, slices: the glue between
// the heavy ops) computed by do from the inputs' data into out.
func (g *Graph) Func(name string, outShape func(in []tensor.Shape) (tensor.Shape, error), do func(in [][]float32, shapes []tensor.Shape, out []float32) error, inputs ...*G.Node) *G.Node {
	dims := make([]int, len(inputs))
	for i, n := range inputs {
		dims[i] = n.Dims()
	}
	probe, err := outShape(shapesOf(inputs))
	if err != nil {
		panic(fmt.Errorf("nn: building %s: %w", name, err))
	}
	return apply(&op{
		name: name, inDims: dims, outDims: len(probe), shape: outShape,
		do: func(in []*tensor.Dense, out []float32) error {
			data := make([][]float32, len(in))
			shapes := make([]tensor.Shape, len(in))
			for i, d := range in {
				data[i], shapes[i] = f32(d), d.Shape()
			}
			return do(data, shapes, out)
		},
	}, inputs...)
}

func shapesOf(nodes []*G.Node) []tensor.Shape {
	out := make([]tensor.Shape, len(nodes))
	for i, n := range nodes {
		out[i] = n.Shape()
	}
	return out
}
