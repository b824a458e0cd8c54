package nn

import (
	"context"
	"errors"
	"testing"

	"gorgonia.org/tensor"

	"blipflow/model/blas"
)

func TestCheckpointStopsACancelledRun(t *testing.T) {
	g := NewGraph(NewCPU(blas.Gonum{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	after := 0
	x := g.Input([]float32{1, 2}, 2)
	first := g.Func("cancel", shapeSame, func(in [][]float32, _ []tensor.Shape, out []float32) error {
		cancel() // the run is cancelled while the first "layer" runs
		copy(out, in[0])
		return nil
	}, x)
	g.Func("second", shapeSame, func(in [][]float32, _ []tensor.Shape, out []float32) error {
		after++
		return nil
	}, g.Checkpoint(first))
	r := g.Compile()
	defer r.Close()
	if err := r.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("run = %v, want context.Canceled", err)
	}
	if after != 0 {
		t.Error("the op after the checkpoint ran")
	}
	// The same compiled graph runs to the end with a live context.
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if after != 1 {
		t.Errorf("second op ran %d times, want 1", after)
	}
}
